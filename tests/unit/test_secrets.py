"""secrets: a secret leaves the run in many spellings (JSON, YAML, URL, base64, PEM lines); `redact`
must blank each of them, and never blank ordinary text for a short encoded form."""

from __future__ import annotations

import base64
import json
import urllib.parse

import yaml

from gitops_action.secrets import MIN_FORM, basic_auth, forms, pem_parts, redact

SECRET = 'pa"ss\\wörd ?&=/+é'


def test_basic_auth_is_base64_of_user_colon_password() -> None:
    assert basic_auth("u", "p") == "dTpw"  # base64("u:p")
    assert base64.b64decode(basic_auth("ci", "a:b")).decode() == "ci:a:b"


def test_the_raw_secret_goes_and_empty_secrets_are_ignored() -> None:
    assert redact("token=hunter2-long;", ["hunter2-long"]) == "token=***;"
    assert redact("nothing here", ["", "absent-secret"]) == "nothing here"


def test_json_forms_escaped_and_unicode() -> None:
    for ascii_only in (True, False):
        text = json.dumps({"k": SECRET}, ensure_ascii=ascii_only)
        assert redact(text, [SECRET]) == '{"k": "***"}'


def test_yaml_double_quoted_forms_with_and_without_unicode() -> None:
    for unicode in (True, False):
        text = yaml.safe_dump({"k": SECRET}, default_style='"', allow_unicode=unicode)
        assert redact(text, [SECRET]) == '"k": "***"\n'


def test_yaml_single_quoted_form_doubles_the_quote() -> None:
    secret = "it's-a-secret"
    text = yaml.safe_dump({"k": secret}, default_style="'")
    assert "''" in text
    assert redact(text, [secret]) == "'k': '***'\n"


def test_url_encoded_forms() -> None:
    for quoted in (
        urllib.parse.quote(SECRET, safe=""),
        urllib.parse.quote(SECRET),
        urllib.parse.quote_plus(SECRET),
    ):
        assert quoted != SECRET
        assert redact(f"https://h/?p={quoted}&x=1", [SECRET]) == "https://h/?p=***&x=1"


def test_base64_forms_plain_urlsafe_and_unpadded() -> None:
    secret = "s3cr3t>>??"  # its base64 has + or / and padding
    raw = secret.encode()
    std, url = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    assert std != url and std.endswith("=")
    for encoded in (std, url, std.rstrip("="), url.rstrip("=")):
        assert redact(f"[{encoded}]", [secret]) == "[***]"


def test_docker_auth_value_is_hidden_through_its_password() -> None:
    # the whole base64 of "user:password" is not a form of the password: it is its own secret
    auth = basic_auth("user", "password-123")
    assert redact(auth, [auth]) == "***"


def test_short_encoded_forms_are_not_used_but_the_raw_secret_is() -> None:
    # base64("ab") = "YWI=" and "YWI" are shorter than MIN_FORM: they would blank ordinary text
    assert len("YWI=") < MIN_FORM
    assert forms("ab") == ("ab",)
    assert redact("YWI= and ab", ["ab"]) == "YWI= and ***"


def test_forms_are_longest_first_and_include_the_secret() -> None:
    found = forms(SECRET)
    assert SECRET in found
    assert [len(f) for f in found] == sorted((len(f) for f in found), reverse=True)
    assert all(len(f) >= MIN_FORM for f in found if f != SECRET)


def test_a_longer_form_is_not_left_half_replaced() -> None:
    # the JSON form `a\"b...` contains no raw secret; the URL form holds the raw `%` forms: every
    # one must go whole, leaving no fragment of the secret behind
    secret = 'a"b%c-long'
    text = " ".join(forms(secret))
    assert set(redact(text, [secret]).split()) == {"***"}


def test_pem_parts_are_the_body_lines_stripped() -> None:
    pem = (
        "-----BEGIN PRIVATE KEY-----\n"
        "  MIIEvQIBADANBgkqhkiG9w0BAQEFAASC  \n"
        "short\n"
        "AAAAAAAA\n"
        "-----END PRIVATE KEY-----\n"
    )
    # headers are not secret; "short" (< 8 characters) would blank common words
    assert pem_parts(pem) == ["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "AAAAAAAA"]
