"""Telegram's text rules: parse_mode=HTML ported from tdlib, trimming, the length limit, commands.

The Bot API server runs tdlib's parser (td/telegram/MessageEntity.cpp, `parse_html`), then
`fix_formatted_text` trims the result, then the send path refuses more than 4096 characters
(`utf8_length`, i.e. code points, not UTF-16 units). Offsets in errors are UTF-8 byte offsets
into the original text; entity offsets and lengths are UTF-16 code units, as in the Bot API.
Quirks kept on purpose because Telegram has them: a bare "&" or an unknown named entity
("&nbsp;") is literal text, a missing ";" after "&lt" is fine, "</>" closes the innermost tag.
See https://core.telegram.org/bots/api#html-style.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

TAGS = frozenset(
    ["a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins"]  # noqa: RUF005 - rows read better
    + ["tg-spoiler", "tg-emoji", "span", "pre", "code", "blockquote"]
)
SIMPLE = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
# tdlib's sort_entities: offset, then longer first, then this priority (lower first).
PRIORITY = {
    "blockquote": 0,
    "expandable_blockquote": 0,
    "pre": 11,
    "code": 20,
    "text_link": 49,
    "bold": 90,
    "italic": 91,
    "underline": 92,
    "strikethrough": 93,
    "spoiler": 94,
    "custom_emoji": 99,
}
SPACE = b" \t\r\n\v\x00"  # td::is_space; NUL stands for "end of text" below
MAX_TEXT_LENGTH = 4096  # https://core.telegram.org/bots/api#sendmessage


COMMAND = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")


class TextError(ValueError):
    """Telegram refuses the text; str() is the description after "Bad Request: "."""


class HTMLError(ValueError):
    """The text is not valid Telegram HTML; str() is tdlib's message, e.g. 'Unclosed start tag at byte offset 4'."""


def _decode_entity(b: bytes, pos: int) -> tuple[int, int]:
    """tdlib decode_html_entity: (code point, position after it), or (0, pos) when it is not one."""
    at = _at(b)
    end = pos + 1
    code = 0
    if at(end) == ord("#"):
        end += 1
        if at(end) == ord("x"):
            end += 1
            while at(end) and chr(at(end)) in "0123456789abcdefABCDEF":
                code = code * 16 + int(chr(at(end)), 16)
                end += 1
        else:
            while 0x30 <= at(end) <= 0x39:
                code = code * 10 + at(end) - 0x30
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while chr(at(end)).isascii() and chr(at(end)).isalpha():
            end += 1
        named = {b"lt": "<", b"gt": ">", b"amp": "&", b"quot": '"'}.get(b[pos + 1 : end])
        if named is None:
            return 0, pos
        code = ord(named)
    return code, end + 1 if at(end) == ord(";") else end


def _at(b: bytes) -> Callable[[int], int]:
    """tdlib reads a NUL-terminated string; past the end we see 0 too."""
    return lambda i: b[i] if i < len(b) else 0


def _checked_link(url: str) -> str:
    """A rough LinkManager::get_checked_link: add http://, add the root path, drop junk."""
    if any(c.isspace() for c in url):
        return ""
    if url.startswith("tg://"):
        return url
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https", "ftp", "tonsite") or "." not in parts.netloc:
        return ""
    return parts._replace(path=parts.path or "/").geturl()


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Turn Telegram HTML into (plain text, Bot API entities); raises HTMLError like Telegram."""
    b = text.encode("utf-8", "surrogatepass")
    at = _at(b)
    out = bytearray()
    utf16 = 0
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, str, int, int]] = []  # tag, argument, utf16 start, out start
    i = 0
    while i < len(b):
        c = b[i]
        if c == ord("&"):
            code, after = _decode_entity(b, i)
            if code:
                out += chr(code).encode("utf-8", "surrogatepass")
                utf16 += 1 + (code > 0xFFFF)
                i = after
                continue
        if c != ord("<"):
            out.append(c)
            if c & 0xC0 != 0x80:
                utf16 += 1 + (c >= 0xF0)
            i += 1
            continue
        begin = i
        i += 1
        if at(i) != ord("/"):
            while at(i) not in SPACE and at(i) != ord(">"):
                i += 1
            if at(i) == 0:
                raise HTMLError(f"Unclosed start tag at byte offset {begin}")
            tag = b[begin + 1 : i].decode("utf-8", "replace").lower()
            if tag not in TAGS:
                raise HTMLError(f'Unsupported start tag "{tag}" at byte offset {begin}')
            argument, i = _attributes(b, i, tag, begin)
            if tag == "span" and argument != "spoiler":
                raise HTMLError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
            stack.append((tag, argument, utf16, len(out)))
        else:
            if not stack:
                raise HTMLError(f"Unexpected end tag at byte offset {begin}")
            while at(i) not in SPACE and at(i) != ord(">"):
                i += 1
            end_tag = b[begin + 2 : i].decode("utf-8", "replace").lower()
            while at(i) in SPACE and at(i) != 0:
                i += 1
            if at(i) != ord(">"):
                raise HTMLError(f"Unclosed end tag at byte offset {begin}")
            tag, argument, start, out_start = stack.pop()
            if end_tag and end_tag != tag:
                raise HTMLError(
                    f'Unmatched end tag at byte offset {begin}, expected "</{tag}>", found "</{end_tag}>"'
                )
            if utf16 > start:
                inner = out[out_start:].decode("utf-8", "replace")
                _close(entities, tag, argument, start, utf16 - start, inner)
        i += 1  # past '>'
    if stack:
        raise HTMLError(f"Can't find end tag corresponding to start tag {stack[-1][0]}")
    entities.sort(key=lambda e: (e["offset"], -e["length"], PRIORITY.get(e["type"], 50)))
    try:
        return out.decode("utf-8"), entities
    except UnicodeDecodeError:  # "&#xD83D;" and friends: half a surrogate pair
        raise HTMLError(
            "Text contains invalid Unicode characters after decoding HTML entities,"
            " check for unmatched surrogate code units"
        ) from None


def _attributes(b: bytes, i: int, tag: str, begin: int) -> tuple[str, int]:
    """Read a start tag's attributes up to its '>'; returns (tdlib's 'argument', index of '>')."""
    at = _at(b)
    argument = ""
    while at(i) != ord(">"):
        while at(i) != 0 and at(i) in SPACE:
            i += 1
        if at(i) == ord(">"):
            break
        name_start = i
        while at(i) not in SPACE and at(i) not in b"=>":
            i += 1
        name = b[name_start:i].decode("utf-8", "replace").lower()
        if not name:
            raise HTMLError(f'Empty attribute name in the tag "{tag}" at byte offset {begin}')
        while at(i) != 0 and at(i) in SPACE:
            i += 1
        if tag == "blockquote" and name == "expandable" and at(i) != ord("="):
            argument = "expandable"  # Bot API 7.3: a boolean attribute, the only one Telegram knows
            continue
        if at(i) != ord("="):
            raise HTMLError(
                f'Expected equal sign in declaration of an attribute of the tag "{tag}" at byte offset {begin}'
            )
        i += 1
        while at(i) != 0 and at(i) in SPACE:
            i += 1
        if at(i) == 0:
            raise HTMLError(f'Unclosed start tag "{tag}" at byte offset {begin}')
        if at(i) not in b"'\"":
            token_start = i
            while at(i) and chr(at(i)).isascii() and (chr(at(i)).isalnum() or at(i) in b".-"):
                i += 1
            value = b[token_start:i].decode().lower()
            if at(i) not in SPACE and at(i) != ord(">"):
                raise HTMLError(f"Unexpected end of name token at byte offset {token_start}")
        else:
            quote = at(i)
            i += 1
            raw = bytearray()
            while at(i) != quote and at(i) != 0:
                code, after = _decode_entity(b, i) if at(i) == ord("&") else (0, i)
                if code:
                    raw += chr(code).encode("utf-8", "surrogatepass")
                    i = after
                else:
                    raw.append(b[i])
                    i += 1
            if at(i) == quote:
                i += 1
            value = raw.decode("utf-8", "replace")
        if at(i) == 0:
            raise HTMLError(f"Unclosed start tag at byte offset {begin}")
        if (tag, name) in (("a", "href"), ("tg-emoji", "emoji-id")):
            argument = value
        elif tag == "code" and name == "class" and value.startswith("language-"):
            argument = value[9:]
        elif tag == "span" and name == "class" and value.startswith("tg-"):
            argument = value[3:]
    return argument, i


def _close(
    entities: list[dict[str, Any]], tag: str, arg: str, offset: int, length: int, inner: str
) -> None:
    """Append the entity a closed tag makes (tdlib merges <pre><code class=…> into one pre)."""
    span: dict[str, Any] = {"offset": offset, "length": length}
    last = entities[-1] if entities else None
    same = last is not None and (last["offset"], last["length"]) == (offset, length)
    if tag in SIMPLE:
        entities.append({"type": SIMPLE[tag], **span})
    elif tag == "tg-emoji":
        if not arg.isdigit() or int(arg) == 0:
            raise HTMLError("Invalid custom emoji identifier specified")
        entities.append({"type": "custom_emoji", **span, "custom_emoji_id": arg})
    elif tag == "a":
        url = _checked_link(arg or inner)
        if url:
            entities.append({"type": "text_link", **span, "url": url})
    elif (
        tag == "pre" and same and last is not None and last["type"] == "code" and "language" in last
    ):
        last["type"] = "pre"
    elif tag == "pre":
        entities.append({"type": "pre", **span})
    elif tag == "code" and same and last is not None and last["type"] == "pre" and arg:
        last["language"] = arg
    elif tag == "code":
        entities.append({"type": "code", **span, **({"language": arg} if arg else {})})
    else:
        kind = "expandable_blockquote" if arg == "expandable" else "blockquote"
        entities.append({"type": kind, **span})


def strip_code_language(entities: list[dict[str, Any]]) -> None:
    """A language only survives on pre; tdlib clears it from a lone code entity."""
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)


def trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """fix_formatted_text: strip surrounding whitespace and clip entities to what is left."""
    ws = " \t\r\n\v\f"
    lead = len(text) - len(text.lstrip(ws))
    body = text.strip(ws)
    end = utf16_length(body)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        stop = min(entity["offset"] + entity["length"] - lead, end)
        if stop > start:
            kept.append({**entity, "offset": start, "length": stop - start})
    return body, kept


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units: the unit of every offset and length in the Bot API."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def parse_text(
    raw: object, parse_mode: object, entities: list[dict[str, Any]] | None
) -> tuple[str, list[dict[str, Any]]]:
    """What Telegram stores for a message text: parsed (HTML or not at all), then trimmed."""
    if not isinstance(raw, str) or not raw:
        raise TextError("message text is empty")
    if parse_mode and str(parse_mode).lower() != "html":
        known = str(parse_mode).lower() in ("markdown", "markdownv2")
        raise TextError(
            f"the fake speaks only HTML, not {parse_mode}" if known else "unsupported parse_mode"
        )
    try:
        text, found = parse_html(raw) if parse_mode else (raw, list(entities or []))
    except HTMLError as error:
        raise TextError(f"can't parse entities: {error}") from None
    strip_code_language(found)
    text, found = trim(text, found)
    if not text:
        raise TextError("message text is empty")
    return text, found


def check_length(text: str) -> None:
    """tdlib counts code points (utf8_length) after parsing and trimming, not UTF-16 units."""
    if len(text) > MAX_TEXT_LENGTH:
        raise TextError("message is too long")


def command_entities(text: str) -> list[dict[str, Any]]:
    """The bot_command entities Telegram marks in what a user writes ("/start", "/sub@bot")."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_length(text[: m.start()]),
            "length": utf16_length(m[0]),
        }
        for m in COMMAND.finditer(text)
    ]
