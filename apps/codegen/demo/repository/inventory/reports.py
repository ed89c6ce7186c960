from inventory.models import Product, format_price
from inventory.stock import StockBook, low_stock


def stock_report(book: StockBook, products: list[Product]) -> str:
    lines = []
    for product in products:
        quantity = book.total_quantity(product.sku)
        lines.append(f"{product.name}: {quantity} units at {format_price(product.price_cents)}")
    return "\n".join(lines)


def reorder_list(book: StockBook, products: list[Product]) -> list[str]:
    return [product.sku for product in low_stock(book, products)]
