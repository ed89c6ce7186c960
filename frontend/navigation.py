"""The console's navigation, derived from the role table so it shows each role exactly its areas,
and from SUITE_APPS so it shows only the areas this process serves."""
from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse

from apps.accounts.roles import Area


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str
    url: str
    children: tuple["NavItem", ...] = ()  # the section's own links the user may use (SECTION_PAGES)


AREA_PAGES = (  # (area, label, url name), in menu order
    (Area.CUSTOMER_SERVICE, "Customer service", "frontend:customer_service"),
    (Area.CODEGEN, "Code completion", "frontend:codegen"),
    (Area.API_TOKENS, "API tokens", "frontend:tokens"),
    (Area.MEDICAL, "Diagnosis assist", "frontend:medical"),
    (Area.ADAPTERS, "Adapters", "frontend:adapters"),
    (Area.USERS, "Users", "frontend:users"),
)
SECTION_PAGES = {  # area -> (further area, label, url name) of its pages only that area's roles use (admins')
    Area.MEDICAL: ((Area.ADAPTERS, "Federated training", "frontend:medical_federated"),),
}
USE_CASE_AREAS = {Area.CUSTOMER_SERVICE: "customer_service", Area.CODEGEN: "codegen", Area.MEDICAL: "medical"}


def area_served(area: Area) -> bool:
    """Whether this process serves the area's pages: a use-case area only where SUITE_APPS names its
    app; the shared areas (API tokens, adapters, users) everywhere."""
    return area not in USE_CASE_AREAS or USE_CASE_AREAS[area] in settings.SUITE_APPS


def section_items_for(user, area: Area) -> tuple[NavItem, ...]:
    """The links of `area`'s own navigation (its template's sub-navigation) that the user's role may use."""
    return tuple(NavItem(name.partition(":")[2], label, reverse(name))
                 for page_area, label, name in SECTION_PAGES.get(area, ()) if user.may_use(page_area))


def nav_items_for(user) -> list[NavItem]:
    if not user.is_authenticated:
        return []
    items = [NavItem(str(area), label, reverse(url), section_items_for(user, area)) for area, label, url in AREA_PAGES
             if area_served(area) and user.may_use(area)]
    items.append(NavItem("status", "Status", reverse("frontend:status")))
    if user.is_staff:
        items.append(NavItem("django_admin", "Django admin", reverse("admin:index")))
    return items
