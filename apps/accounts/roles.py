"""The four roles and the console areas each may use.

One table decides both what the navigation shows and what the server allows, so the two can
never disagree.
"""
from enum import StrEnum


class Role(StrEnum):
    SUPPORT_AGENT = "support_agent"
    DEVELOPER = "developer"
    CLINICIAN = "clinician"
    ADMIN = "admin"


class Area(StrEnum):
    CUSTOMER_SERVICE = "customer_service"
    CODEGEN = "codegen"
    API_TOKENS = "api_tokens"
    MEDICAL = "medical"
    ADAPTERS = "adapters"
    USERS = "users"


ROLE_LABELS = {
    Role.SUPPORT_AGENT: "Support agent",
    Role.DEVELOPER: "Developer",
    Role.CLINICIAN: "Clinician",
    Role.ADMIN: "Admin",
}

AREAS_BY_ROLE: dict[Role, tuple[Area, ...]] = {
    Role.SUPPORT_AGENT: (Area.CUSTOMER_SERVICE,),
    Role.DEVELOPER: (Area.CODEGEN, Area.API_TOKENS),
    Role.CLINICIAN: (Area.MEDICAL,),
    Role.ADMIN: tuple(Area),
}


def role_may_use(role: str, area: Area) -> bool:
    """Whether a user of `role` may open pages and call APIs of `area`."""
    try:
        return area in AREAS_BY_ROLE[Role(role)]
    except ValueError:
        return False
