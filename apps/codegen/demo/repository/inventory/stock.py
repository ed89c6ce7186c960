from collections import defaultdict

from inventory.models import Product, StockLevel


class StockBook:
    """Stock levels per product and warehouse."""

    def __init__(self):
        self._levels: dict[tuple[str, str], int] = defaultdict(int)

    def receive(self, sku: str, warehouse: str, quantity: int) -> None:
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self._levels[(sku, warehouse)] += quantity

    def ship(self, sku: str, warehouse: str, quantity: int) -> None:
        available = self._levels[(sku, warehouse)]
        if quantity > available:
            raise ValueError(f"only {available} of {sku} left in {warehouse}")
        self._levels[(sku, warehouse)] = available - quantity

    def total_quantity(self, sku: str) -> int:
        return sum(quantity for (item, _), quantity in self._levels.items() if item == sku)

    def levels(self) -> list[StockLevel]:
        return [StockLevel(sku, warehouse, quantity) for (sku, warehouse), quantity in sorted(self._levels.items())]


def low_stock(book: StockBook, products: list[Product], threshold: int = 5) -> list[Product]:
    """Products with fewer than `threshold` units across all warehouses."""
    return [product for product in products if book.total_quantity(product.sku) < threshold]
