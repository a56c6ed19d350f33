"""One HTTP exchange with a local service, answering every status (4xx and 5xx included) instead of
raising."""

import dataclasses
import json
import urllib.error
import urllib.request
from email.message import Message


@dataclasses.dataclass(frozen=True)
class Answer:
    """Status, headers (case-insensitive lookups) and raw body of an HTTP answer."""

    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self):
        return json.loads(self.body)


def request(url, method="GET", body=None, headers=None, timeout=30) -> Answer:
    """Sends `method url` with `body` (bytes, or any other value sent as JSON) and `headers`."""
    headers = dict(headers or {})
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
        headers.setdefault("content-type", "application/json")
    call = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(call, timeout=timeout) as answer:
            return Answer(answer.status, answer.headers, answer.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read())
