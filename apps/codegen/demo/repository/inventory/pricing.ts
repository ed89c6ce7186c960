export interface Discount {
  code: string;
  percent: number;
}

export function applyDiscount(priceCents: number, discount: Discount): number {
  return Math.round(priceCents * (1 - discount.percent / 100));
}
