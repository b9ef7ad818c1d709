"""The local bridge's input transformer writes what EventBridge's documentation shows.

The cases are the examples of the EventBridge user guide's "Transforming target input" page
(docs/reference/aws.md §H.45), on its EC2 event.
"""

from __future__ import annotations

from typing import Any

import pytest

from local.input_transformer import apply

EC2_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2015-11-11T21:29:54Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
    "detail": {"instance-id": "i-0123456789", "state": "RUNNING"},
}
PATHS = {"instance": "$.detail.instance-id", "state": "$.detail.state"}


def transformed(template: str, paths: dict[str, str] = PATHS) -> Any:
    return apply({"InputPathsMap": paths, "InputTemplate": template}, EC2_EVENT)


def test_a_placeholder_in_value_position_is_written_as_json() -> None:
    # the guide's "Simple JSON" row
    assert transformed('{"instance" : <instance>, "state": <state>}') == {
        "instance": "i-0123456789",
        "state": "RUNNING",
    }


def test_a_placeholder_inside_a_string_is_written_as_text() -> None:
    # the guide's "JSON with strings and variables" row
    got = transformed(
        '{"instance": <instance>, "state": "<state>", '
        '"instanceStatus": "instance \\"<instance>\\" is in <state>"}'
    )
    assert got == {
        "instance": "i-0123456789",
        "state": "RUNNING",
        "instanceStatus": 'instance "i-0123456789" is in RUNNING',
    }


def test_mixed_with_static_values_in_an_array() -> None:
    got = transformed('{"instance" : <instance>, "state": [ 9, <state>, true ], "T" : "Yes"}')
    assert got == {"instance": "i-0123456789", "state": [9, "RUNNING", True], "T": "Yes"}


def test_objects_and_arrays_are_inserted_whole() -> None:
    got = transformed('{"d": <d>, "r": <r>}', {"d": "$.detail", "r": "$.resources"})
    assert got == {"d": EC2_EVENT["detail"], "r": EC2_EVENT["resources"]}


def test_a_value_that_needs_escaping_stays_valid_json() -> None:
    event = {"detail": {"reason": 'failed to resolve ref "docker.io/x": not found'}}
    got = apply({"InputPathsMap": {"r": "$.detail.reason"}, "InputTemplate": '{"r": <r>}'}, event)
    assert got == {"r": event["detail"]["reason"]}


def test_a_missing_path_gives_an_empty_string() -> None:
    assert transformed('{"x": <x>}', {"x": "$.detail.nothing"}) == {"x": ""}


@pytest.mark.parametrize("path", ["$..detail", "$.resources[0]", "detail.state", "$.*"])
def test_paths_the_template_does_not_use_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="unsupported input path"):
        transformed('{"x": <x>}', {"x": path})
