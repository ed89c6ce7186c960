"""Admin pages of the codegen app. Repositories are registered through the API or the console (the
folder and archive rules live in the services), so here one may only share, reindex or delete one;
everything indexing derives from a repository, and the completions served, are read-only."""
from django.contrib import admin

from apps.codegen import services
from apps.codegen.models import Chunk, Completion, CompletionEvent, Definition, Repository, SourceFile
from apps.core.admin import ReadOnlyAdmin


@admin.register(Repository)
class RepositoryAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "shared", "created_by", "files_total", "lines", "indexed_at")
    list_filter = ("status", "shared")
    search_fields = ("name", "git_url")
    fields = ("name", "path", "git_url", "shared", "created_by", "status", "files_total", "files_done", "lines",
              "error", "skipped", "indexed_at", "index_version", "created_at", "updated_at")
    readonly_fields = tuple(name for name in fields if name != "shared")
    actions = ["reindex"]

    def has_add_permission(self, request) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        services.repository_update(repository=obj, shared=obj.shared)

    def delete_model(self, request, obj) -> None:
        services.repository_delete(repository=obj)

    def delete_queryset(self, request, queryset) -> None:
        for repository in queryset:
            services.repository_delete(repository=repository)

    @admin.action(description="Reindex the selected repositories")
    def reindex(self, request, queryset) -> None:
        for repository in queryset:
            services.repository_reindex(repository=repository)


@admin.register(SourceFile)
class SourceFileAdmin(ReadOnlyAdmin):
    list_display = ("path", "repository", "language", "lines")
    list_filter = ("language",)
    search_fields = ("path",)


@admin.register(Definition)
class DefinitionAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "file", "start_line", "end_line")
    list_filter = ("kind",)
    search_fields = ("name",)


@admin.register(Chunk)
class ChunkAdmin(ReadOnlyAdmin):
    list_display = ("file", "start_line", "end_line")


@admin.register(Completion)
class CompletionAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "repository", "language", "guard", "created_at")
    list_filter = ("language", "guard")


@admin.register(CompletionEvent)
class CompletionEventAdmin(ReadOnlyAdmin):
    list_display = ("completion", "type", "select_kind", "choice_index", "view_id", "elapsed", "created_at")
    list_filter = ("type", "select_kind")
    search_fields = ("completion__id", "view_id")
