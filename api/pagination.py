from rest_framework.pagination import CursorPagination


class CreatedCursorPagination(CursorPagination):
    """Cursor pagination on every list, newest first unless ``ordering`` says otherwise."""

    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 500
