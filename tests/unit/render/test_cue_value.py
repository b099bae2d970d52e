"""cue_value: the module URLs of a bundle from the value timoni prints, exact or an error."""

from __future__ import annotations

import pytest

from gitops_action.render import cue_value

# `timoni bundle vet --print-value` of the example platform bundle (timoni v0.31.0), values cut.
PLATFORM = """bundle: {
	apiVersion: "v1alpha1"
	name:       "platform"
	instances: {
		webapp: {
			module: {
				url:     "file://../modules/webapp"
				version: *"latest" | string
			}
			namespace: "platform"
			values: {
				replicas: 2
				message:  "hello from staging"
			}
		}
		"billing-eu": {
			module: {
				url:     "oci://ghcr.io/x/credentials"
				version: "1.0.0"
			}
			values: extra: {apiKey: "k", list: [1, "two", {three: 3}]}
		}
	}
}
"""


def urls(instances: str) -> list[tuple[str, str]]:
    return cue_value.bundle_module_urls(
        f'bundle: {{\n\tname: "b"\n\tinstances: {{\n{instances}\n\t}}\n}}\n'
    )


def test_the_urls_of_timoni_s_printed_value() -> None:
    assert cue_value.bundle_module_urls(PLATFORM) == [
        ("webapp", "file://../modules/webapp"),
        ("billing-eu", "oci://ghcr.io/x/credentials"),
    ]


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r'"file://a\"b\\c\u00e9\t"', 'file://a"b\\c\u00e9\t'),
        ('#"file://a\\b"c"#', 'file://a\\b"c'),
        ('"""\n\t\t\t\tfile://multi\n\t\t\t\t"""', "file://multi"),
        (
            '#"""\n\t\t\t\tfile://x\n\t\t\t\t"""\n\t\t\t\ty\n\t\t\t\t"""#',
            'file://x\n"""\ny',
        ),
        (r'"file://\U0001F600"', "file://\U0001f600"),
    ],
)
def test_strings_in_every_form_cue_writes(literal: str, value: str) -> None:
    assert urls(
        f"\t\ta: {{\n\t\t\tmodule: {{\n\t\t\t\turl: {literal}\n\t\t\t}}\n\t\t}}"
    ) == [("a", value)]


def test_a_label_chain_is_a_struct() -> None:
    assert urls('\t\ta: module: url: "file://x"') == [("a", "file://x")]


@pytest.mark.parametrize(
    "instances",
    [
        # a default: timoni resolves it from elsewhere
        '\t\ta: module: url: *"file://x" | string',
        '\t\ta: module: url: "file://x" + y',
        "\t\ta: module: url: 'file://x'",  # bytes
        '\t\ta: module: url: "file://x"\n\t\ta: module: url: "file://y"',  # twice
        '\t\ta: {module: url: "file://x"} | {module: url: "file://y"}',
        # an embedding: fields this reader cannot see
        '\t\tclose({a: module: url: "file://x"})',
        '\t\ta: module: {url: "file://x", [string]: _}',
        "\t\ta: module: {}",
    ],
)
def test_anything_but_plain_structs_and_strings_on_the_way_is_an_error(
    instances: str,
) -> None:
    with pytest.raises(cue_value.CueValueError):
        urls(instances)


BROKEN = ['bundle: {instances: {a: module: url: "x}}}', "bundle: {", r'bundle: "\(x)"']


@pytest.mark.parametrize("text", BROKEN)
def test_broken_text_is_an_error(text: str) -> None:
    with pytest.raises(cue_value.CueValueError):
        cue_value.bundle_module_urls(text)
