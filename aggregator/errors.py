"""The one error that turns into a 4xx answer."""


class Rejected(Exception):
    """The request cannot be taken as it is; `status` is the 4xx to answer, `detail` why."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
