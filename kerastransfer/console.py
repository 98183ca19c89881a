"""Progress lines on stdout, flushed at once so a piped or logged run shows them as they happen."""


def log(message: str) -> None:
    print(message, flush=True)
