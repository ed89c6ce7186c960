"""Page-number pagination for the app's list endpoints: `?page=` (1-based) and `?page_size=` (1 to
PAGE_SIZE_MAX, PAGE_SIZE by default), answered as `{count, next, previous, results}` (DRF's
PageNumberPagination shape). An out-of-range page or size is a 400 naming the parameter, not a silent
fallback, so a client that asked for 500 rows knows it got at most 100."""
from functools import cache

from django.core.paginator import Paginator
from django.db.models import QuerySet
from rest_framework import serializers

PAGE_SIZE = 50
PAGE_SIZE_MAX = 100


class PageSerializer(serializers.Serializer):
    page = serializers.IntegerField(min_value=1, default=1, help_text="1-based page number")
    page_size = serializers.IntegerField(min_value=1, max_value=PAGE_SIZE_MAX, default=PAGE_SIZE,
                                         help_text=f"items per page (at most {PAGE_SIZE_MAX})")


@cache
def paginated(item_serializer: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The page envelope around `item_serializer`, one class per item type (its schema component)."""
    name = f"Paginated{item_serializer.__name__.removesuffix('Serializer')}List"
    fields = {
        "count": serializers.IntegerField(help_text="items on all pages"),
        "next": serializers.URLField(allow_null=True, help_text="the next page; null on the last"),
        "previous": serializers.URLField(allow_null=True, help_text="the previous page; null on the first"),
        "results": item_serializer(many=True),
    }
    return type(name, (serializers.Serializer,), fields)


def paginate(request, queryset: QuerySet, item_serializer: type[serializers.Serializer], context=None) -> dict:
    """The requested page of `queryset`, serialised; a 400 for a bad page or size, including a page past
    the last one (page 1 of an empty list is an empty page)."""
    params = PageSerializer(data=request.query_params)
    params.is_valid(raise_exception=True)
    page_number, page_size = params.validated_data["page"], params.validated_data["page_size"]
    paginator = Paginator(queryset, page_size)
    if page_number > max(paginator.num_pages, 1):
        raise serializers.ValidationError({"page": [f"There are {paginator.num_pages} pages."]})
    page = paginator.page(page_number) if paginator.count else None

    def link(number: int) -> str:
        query = request.query_params.copy()
        query["page"], query["page_size"] = str(number), str(page_size)
        return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")

    return {
        "count": paginator.count,
        "next": link(page_number + 1) if page and page.has_next() else None,
        "previous": link(page_number - 1) if page and page.has_previous() else None,
        "results": item_serializer(page.object_list if page else [], many=True, context=context).data,
    }
