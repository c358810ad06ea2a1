"""Request metrics (filled in by the operations work; a pass-through until then)."""


class MetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)
