from dataclasses import dataclass, field


@dataclass
class Product:
    """A product the shop sells."""

    sku: str
    name: str
    price_cents: int
    tags: list[str] = field(default_factory=list)


@dataclass
class StockLevel:
    sku: str
    warehouse: str
    quantity: int


def format_price(price_cents: int, currency: str = "EUR") -> str:
    """Render a price in cents as a human-readable amount, e.g. 1999 -> '19.99 EUR'."""
    return f"{price_cents // 100}.{price_cents % 100:02d} {currency}"
