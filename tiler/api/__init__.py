"""HTTP only: query dependencies, responses and the routers."""
