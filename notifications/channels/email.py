"""Email: build the branded message, pick the connection (staging goes to a sink), and send
over SMTP, recording the outcome in a transaction that commits with the final "." of DATA."""

from __future__ import annotations

import binascii
import functools
import re
import secrets
import smtplib
from email import encoders
from email.header import Header
from email.mime.base import MIMEBase
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr

import environ
from anymail.exceptions import AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.console import EmailBackend as ConsoleBackend
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import sanitize_address

ALLOWLIST = "allowlist"
SINK = "sink"


def staging_sink_url() -> str:
    default = f"filemail:///{settings.VAR_DIR / 'staging-mail'}"
    return getattr(settings, "NOTIFICATIONS_STAGING_EMAIL_URL", "") or default


def connection_from_url(url: str):
    """A Django email connection from an EMAIL_URL-style address (smtp://, filemail://, …)."""
    config = environ.Env.email_url_config(url)
    kwargs = {
        "host": config.get("EMAIL_HOST"),
        "port": config.get("EMAIL_PORT"),
        "username": config.get("EMAIL_HOST_USER"),
        "password": config.get("EMAIL_HOST_PASSWORD"),
        "use_tls": config.get("EMAIL_USE_TLS"),
        "use_ssl": config.get("EMAIL_USE_SSL"),
        "file_path": config.get("EMAIL_FILE_PATH"),
    }
    kwargs = {k: v for k, v in kwargs.items() if v not in (None, "")}
    backend = config["EMAIL_BACKEND"]
    if "smtp" not in backend:
        kwargs = {k: v for k, v in kwargs.items() if k == "file_path"}
    if "filebased" not in backend:
        kwargs.pop("file_path", None)
    return get_connection(backend, fail_silently=False, **kwargs)


def route(environment, email: str, test_addresses: set[str]) -> str:
    """'' (the real backend), ALLOWLIST (staging, an allowlisted test inbox) or SINK."""
    if environment.is_production:
        return ""
    return ALLOWLIST if email.lower() in test_addresses else SINK


def permanent_refusal(error: Exception) -> str:
    """What the server answered, when an error from a Django email backend is a refusal
    for good (5xx) of the address or of the message; '' for anything else (a server down,
    a 4xx, our sender refused: worth trying again)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        answers = list(error.recipients.values())
        if answers and all(500 <= code < 600 for code, _ in answers):
            code, reply = answers[0]
            return f"{code} {_reply_text(reply)} (at RCPT)"
    elif isinstance(error, smtplib.SMTPDataError) and 500 <= error.smtp_code < 600:
        return f"{error.smtp_code} {_reply_text(error.smtp_error)} (at DATA)"
    elif isinstance(error, AnymailRecipientsRefused):
        return str(error)
    return ""


def _reply_text(reply) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def open_connection(route_name: str):
    if route_name == SINK:
        connection = connection_from_url(staging_sink_url())
    else:
        connection = get_connection(fail_silently=False)
    connection.open()
    return connection


def message_id(environment, delivery_id: int) -> str:
    """Deterministic: a resend of the same delivery carries the same Message-ID."""
    return f"<delivery.{delivery_id}.{environment.pk}@{environment.host}>"


def build_email(
    *, environment, delivery, rendered, to: str, from_email: str, attachments=(), sink=False
) -> EmailMultiAlternatives:
    headers = {
        "Message-ID": message_id(environment, delivery.pk),
        "X-Chimney-Delivery": str(delivery.pk),
        "X-Chimney-Campaign": delivery.campaign_key,
    }
    if rendered.unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{rendered.unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    if sink:
        headers["X-Chimney-Staging-Sink"] = "1"
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=from_email,
        to=[to],
        headers=headers,
    )
    message.attach_alternative(rendered.html, "text/html")
    for attachment in attachments:
        message.attach(_mime_attachment(attachment))
    return message


def _mime_attachment(attachment: dict) -> MIMEBase:
    """A text/calendar part keeps its iTIP method (REQUEST, CANCEL) as a content-type param."""
    mimetype = attachment.get("mimetype", "application/octet-stream")
    main, _, params = mimetype.partition(";")
    maintype, subtype = main.strip().split("/", 1)
    if maintype == "text":
        part = MIMEText(attachment["content"], subtype, "utf-8")
    else:
        content = attachment["content"]
        part = MIMEBase(maintype, subtype)
        part.set_payload(content.encode() if isinstance(content, str) else content)
        encoders.encode_base64(part)
    for param in filter(None, (p.strip() for p in params.split(";"))):
        key, _, value = param.partition("=")
        part.set_param(key.strip(), value.strip().strip('"'))
    part.add_header("Content-Disposition", "attachment", filename=attachment["filename"])
    return part


def sender(environment, settings_row, branding) -> str:
    """The institution's name with its sender address (or the platform's default address)."""
    _, address = parseaddr(settings_row.from_email or settings.DEFAULT_FROM_EMAIL)
    name = branding.display_name if branding else environment.institution.display_name
    return formataddr((name, address))


def _set_boundaries(mime, message) -> None:
    """Unique per delivery, so the email generator need not search the text for a free one
    (it compiles a new regular expression per message: a third of the MIME time)."""
    token = message.extra_headers.get("X-Chimney-Delivery", "0")
    for i, part in enumerate(p for p in mime.walk() if p.is_multipart()):
        part.set_boundary(f"==chimney-{token}-{i}-{secrets.token_hex(8)}==")


def fixed_boundaries(message) -> None:
    """Unique MIME boundaries when the email package writes the message (see above)."""
    original = message.message

    def message_with_boundaries():
        mime = original()
        _set_boundaries(mime, message)
        return mime

    message.message = message_with_boundaries


def _header(name: str, value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"header {name} contains a line break")
    if value.isascii() and len(value) < 900:
        return f"{name}: {value}"
    return f"{name}: {Header(value, 'utf-8', header_name=name).encode()}"


def _qp(text: str) -> str:
    # C quoted-printable: 7-bit, lines of at most 76 characters, whatever the template made.
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")


def _body(text: str) -> tuple[str, str]:
    """(Content-Transfer-Encoding, body): ASCII text with lines of at most 998 characters
    goes as it is (7bit, RFC 5322 §2.1.1); anything else quoted-printable."""
    if (
        text.isascii()
        and "\r" not in text
        and "\0" not in text
        and max(map(len, text.split("\n"))) <= 998
    ):
        return "7bit", text
    return "quoted-printable", _qp(text)


_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


def _address(address: str, encoding: str) -> str:
    # Django's sanitize_address parses with the email package: costly, and a plain ASCII
    # address (nearly every member's) comes out of it unchanged.
    if _PLAIN_ADDRESS.fullmatch(address):
        return address
    return _sanitized(address, encoding)


@functools.lru_cache(maxsize=64)
def _sanitized(address: str, encoding: str) -> str:
    return sanitize_address(address, encoding)


def raw_message(message: EmailMultiAlternatives) -> bytes | None:
    """The RFC 5322 bytes of a text + HTML message without attachments, built directly.

    The email package's generator folds and re-encodes every header and searches the text
    for a free boundary: most of a message's cost. These messages have a fixed shape, so
    they are written as a string (7bit or quoted-printable bodies, RFC 2047 headers when
    needed).
    None for other shapes (attachments): the caller uses message.message().
    """
    if message.attachments or len(message.alternatives) != 1:
        return None
    html, mimetype = message.alternatives[0]
    if mimetype != "text/html":
        return None
    encoding = message.encoding or settings.DEFAULT_CHARSET
    token = message.extra_headers.get("X-Chimney-Delivery", "0")
    boundary = f"==chimney-{token}-{secrets.token_hex(8)}=="
    lines = [
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "MIME-Version: 1.0",
        _header("Subject", message.subject),
        _header("From", _address(message.from_email, encoding)),
        _header("To", ", ".join(_address(a, encoding) for a in message.to)),
        f"Date: {formatdate(localtime=settings.EMAIL_USE_LOCALTIME)}",
    ]
    lines += [_header(name, str(value)) for name, value in message.extra_headers.items()]
    for body, subtype in ((message.body, "plain"), (html, "html")):
        transfer, encoded = _body(body)
        lines += [
            "",
            f"--{boundary}",
            f'Content-Type: text/{subtype}; charset="utf-8"',
            f"Content-Transfer-Encoding: {transfer}",
            "",
            encoded,
        ]
    lines += [f"--{boundary}--", ""]
    return "\n".join(lines).encode("ascii")


def _file_write(connection, data: bytes) -> None:
    """As the file (or console) backend writes a message, from bytes we already have."""
    with connection._lock:
        created = connection.open()
        try:
            connection.stream.write(data.replace(b"\r\n", b"\n") + b"\n")
            connection.stream.write(b"-" * 79 + b"\n")
            connection.stream.flush()
        finally:
            if created:
                connection.close()


class SMTPOutcome(Exception):
    """A refusal by the SMTP server with its code: 5xx permanent, 4xx transient."""

    def __init__(self, code: int, message: str, *, stage: str, after_commit: bool = False):
        super().__init__(f"{code} {message}")
        self.code = code
        self.stage = stage  # mail (sender), rcpt (the address), data (the message)
        self.permanent = 500 <= code < 600
        self.after_commit = after_commit

    @property
    def bounce(self) -> bool:
        """The server refused the address itself: it is dead for us."""
        return self.permanent and self.stage == "rcpt"


def write_local(connection, message: EmailMultiAlternatives) -> None:
    """Hand a message to a local sink: files or the console (bytes written directly when
    the message has the plain shape), or Django's in-memory outbox."""
    raw = raw_message(message) if isinstance(connection, ConsoleBackend) else None
    if raw is not None:
        _file_write(connection, raw)
        return
    fixed_boundaries(message)
    if not connection.send_messages([message]):
        raise OSError("the email backend did not take the message")


def send(connection: SMTPBackend, message: EmailMultiAlternatives, commit_point) -> str:
    """Send one message over SMTP; the final "." of DATA goes out inside `commit_point()`.

    The server takes responsibility for a message when it receives the final "." of DATA.
    `commit_point` is a context manager: it records the delivery sent on entering (not yet
    committed) and commits on leaving, right after the "." and before the server's reply
    is read. A worker killed before the "." leaves the delivery "sending", never delivered,
    and the sweeper sends it; an error on the "." itself rolls the record back.

    When the server offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go out together
    and their replies are read after: one round trip instead of three.
    """
    smtp: smtplib.SMTP = connection.connection
    encoding = message.encoding or settings.DEFAULT_CHARSET
    from_email = sanitize_address(message.from_email, encoding)
    recipients = [sanitize_address(a, encoding) for a in message.recipients()]
    data = raw_message(message)
    if data is None:
        mime = message.message()
        _set_boundaries(mime, message)
        data = mime.as_bytes(linesep="\r\n")
    else:
        data = data.replace(b"\n", b"\r\n")
    smtp.ehlo_or_helo_if_needed()
    if smtp.has_extn("pipelining"):
        _envelope_pipelined(smtp, from_email, recipients)
    else:
        _envelope(smtp, from_email, recipients)
    quoted = smtplib._quote_periods(data)
    if not quoted.endswith(b"\r\n"):
        quoted += b"\r\n"
    smtp.send(quoted)
    with commit_point():
        smtp.send(b".\r\n")
    code, reply = smtp.getreply()
    if code != 250:
        raise SMTPOutcome(code, reply.decode(errors="replace"), stage="data", after_commit=True)
    return message.extra_headers["Message-ID"]


def _envelope(smtp: smtplib.SMTP, from_email: str, recipients: list[str]) -> None:
    code, reply = smtp.mail(from_email)
    if code != 250:
        smtp.rset()
        raise SMTPOutcome(code, reply.decode(errors="replace"), stage="mail")
    for recipient in recipients:
        code, reply = smtp.rcpt(recipient)
        if code not in (250, 251):
            smtp.rset()
            raise SMTPOutcome(code, reply.decode(errors="replace"), stage="rcpt")
    code, reply = smtp.docmd("data")
    if code != 354:
        smtp.rset()
        raise SMTPOutcome(code, reply.decode(errors="replace"), stage="data")


def _envelope_pipelined(smtp: smtplib.SMTP, from_email: str, recipients: list[str]) -> None:
    commands = [f"MAIL FROM:{smtplib.quoteaddr(from_email)}"]
    commands += [f"RCPT TO:{smtplib.quoteaddr(r)}" for r in recipients]
    commands.append("DATA")
    smtp.send("".join(f"{c}\r\n" for c in commands))
    replies = [smtp.getreply() for _ in commands]
    stages = ["mail"] + ["rcpt"] * len(recipients) + ["data"]
    expected = [(250,)] + [(250, 251)] * len(recipients) + [(354,)]
    failure = next(
        (
            (code, reply, stage)
            for (code, reply), stage, ok in zip(replies, stages, expected, strict=True)
            if code not in ok
        ),
        None,
    )
    if failure is None:
        return
    if replies[-1][0] == 354:
        # The server opened DATA although an earlier command failed (RFC 2920 says it
        # must not): end it empty, and drop it with RSET.
        smtp.send(b".\r\n")
        smtp.getreply()
    smtp.rset()
    code, reply, stage = failure
    raise SMTPOutcome(code, reply.decode(errors="replace"), stage=stage)
