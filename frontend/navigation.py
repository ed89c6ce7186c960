"""The console's navigation, derived from the role table so it shows each role exactly its areas."""
from dataclasses import dataclass

from django.urls import reverse

from apps.accounts.roles import Area


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url: str


AREA_PAGES = (  # (area, label, url name), in menu order
    (Area.CUSTOMER_SERVICE, "Customer service", "frontend:customer_service"),
    (Area.CODEGEN, "Code completion", "frontend:codegen"),
    (Area.API_TOKENS, "API tokens", "frontend:tokens"),
    (Area.MEDICAL, "Diagnosis assist", "frontend:medical"),
    (Area.ADAPTERS, "Adapters", "frontend:adapters"),
    (Area.USERS, "Users", "frontend:users"),
)


def nav_items_for(user) -> list[NavItem]:
    if not user.is_authenticated:
        return []
    items = [NavItem(str(area), label, reverse(url)) for area, label, url in AREA_PAGES if user.may_use(area)]
    items.append(NavItem("status", "Status", reverse("frontend:status")))
    if user.is_staff:
        items.append(NavItem("django_admin", "Django admin", reverse("admin:index")))
    return items
