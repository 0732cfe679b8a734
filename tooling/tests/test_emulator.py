"""The patched emulator answers reads exactly as plain moto does, item lists included."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bookrec_local.procs import REQUIRED_MOTO, local_dynamodb, running_moto, unsupported_moto

ITEMS = [
    {"pk": {"S": f"book-{n % 3}"}, "sk": {"N": str(n)}, "title": {"S": f"Tïtle “{n}”\n"},
     "cover": {"B": bytes([n, 0, 255])}, "tags": {"SS": ["a", f"t{n}"]}, "scores": {"NS": ["1.5", str(n + 2)]},
     "blobs": {"BS": [b"\x00\x01", bytes([n + 1])]}, "flag": {"BOOL": n % 2 == 0}, "none": {"NULL": True},
     "nested": {"M": {"list": {"L": [{"N": "1"}, {"S": "x"}, {"B": b"\xff"}]}, "count": {"N": str(n)}}},
     "gsi_pk": {"S": "all"}, "shard": {"S": f"s{n % 2}"},
     **({"stamp": {"S": f"2026-01-{1 + n % 9:02d}T00:00:{n:02d}Z"}} if n % 5 else {})}  # some not in by_stamp
    for n in range(40)
]


@pytest.fixture(scope="module")
def plain_moto():
    with running_moto(serialised=True) as moto:
        yield local_dynamodb(moto.endpoint)


@pytest.fixture(scope="module")
def both(plain_moto, moto_endpoint):
    table = f"atomic{uuid.uuid4().hex[:8]}"
    clients = [local_dynamodb(moto_endpoint), plain_moto]
    for client in clients:
        client.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "N"},
                                  {"AttributeName": "gsi_pk", "AttributeType": "S"},
                                  {"AttributeName": "shard", "AttributeType": "S"},
                                  {"AttributeName": "stamp", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{"IndexName": "by_all", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "gsi_pk", "KeyType": "HASH"},
                                                   {"AttributeName": "sk", "KeyType": "RANGE"}]},
                                    {"IndexName": "by_stamp", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "shard", "KeyType": "HASH"},
                                                   {"AttributeName": "stamp", "KeyType": "RANGE"}]}])
        for item in ITEMS:
            client.put_item(TableName=table, Item=item)
    return table, clients


def unordered_sets(value):
    """Sets have no order (moto's own projection rebuilds them through Python sets, hash-randomised)."""
    if isinstance(value, dict):
        return {key: sorted(inner) if key in ("SS", "NS", "BS") else unordered_sets(inner)
                for key, inner in value.items()}
    if isinstance(value, list):
        return [unordered_sets(inner) for inner in value]
    return value


def answers(clients, operation: str, **request) -> list[dict]:
    out = []
    for client in clients:
        response = getattr(client, operation)(**request)
        response.pop("ResponseMetadata")
        out.append(unordered_sets(response))
    return out


@pytest.mark.parametrize("operation, request_of", [
    ("get_item", lambda t: {"TableName": t, "Key": {"pk": {"S": "book-1"}, "sk": {"N": "7"}}}),
    ("get_item", lambda t: {"TableName": t, "Key": {"pk": {"S": "book-1"}, "sk": {"N": "999"}}}),
    ("scan", lambda t: {"TableName": t, "Limit": 7}),
    ("scan", lambda t: {"TableName": t, "Segment": 1, "TotalSegments": 3, "ProjectionExpression": "pk, cover, nested"}),
    ("query", lambda t: {"TableName": t, "KeyConditionExpression": "pk = :p",
                         "ExpressionAttributeValues": {":p": {"S": "book-2"}}, "ScanIndexForward": False}),
    ("query", lambda t: {"TableName": t, "IndexName": "by_all", "KeyConditionExpression": "gsi_pk = :p AND sk > :s",
                         "ExpressionAttributeValues": {":p": {"S": "all"}, ":s": {"N": "30"}}}),
    ("query", lambda t: {"TableName": t, "KeyConditionExpression": "pk = :p",
                         "ProjectionExpression": "#t, scores, nested.list[1], blobs, absent_attr",
                         "ExpressionAttributeNames": {"#t": "title"},
                         "ExpressionAttributeValues": {":p": {"S": "book-1"}}}),
    *[("query", lambda t, c=condition, v=values, f=forward, n=limit: {
        "TableName": t, "IndexName": "by_stamp", "KeyConditionExpression": f"shard = :p AND {c}",
        "ExpressionAttributeValues": {":p": {"S": "s1"}, **v}, "ScanIndexForward": f,
        **({"Limit": n} if n else {})})
      for condition, values in [
          ("stamp > :a", {":a": {"S": "2026-01-05T00:00:09Z"}}),
          ("stamp >= :a", {":a": {"S": "2026-01-05T00:00:23Z"}}),
          ("stamp < :a", {":a": {"S": "2026-01-04"}}),
          ("stamp <= :a", {":a": {"S": "2026-01-03T00:00:29Z"}}),
          ("stamp = :a", {":a": {"S": "2026-01-03T00:00:11Z"}}),
          ("stamp BETWEEN :a AND :b", {":a": {"S": "2026-01-02"}, ":b": {"S": "2026-01-06T00:00:05Z"}}),
          ("begins_with(stamp, :a)", {":a": {"S": "2026-01-07"}}),
      ]
      for forward, limit in [(True, None), (False, 3)]],
    ("query", lambda t: {"TableName": t, "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
                         "ExpressionAttributeValues": {":p": {"S": "book-0"}, ":a": {"N": "6"}, ":b": {"N": "21"}},
                         "ScanIndexForward": False, "Limit": 3}),
    ("get_item", lambda t: {"TableName": t, "Key": {"pk": {"S": "book-1"}, "sk": {"N": "4"}},
                            "ProjectionExpression": "sk, flag, #n", "ExpressionAttributeNames": {"#n": "none"}}),
    ("batch_get_item", lambda t: {"RequestItems": {t: {"Keys": [{"pk": {"S": "book-0"}, "sk": {"N": "3"}},
                                                                {"pk": {"S": "book-2"}, "sk": {"N": "5"}}]}}}),
])
def test_reads_match_plain_moto(both, operation, request_of):
    table, clients = both
    patched, plain = answers(clients, operation, **request_of(table))
    if operation == "batch_get_item":  # the order of a batch's items is unspecified
        for answer in (patched, plain):
            answer["Responses"][table].sort(key=lambda item: int(item["sk"]["N"]))
    assert patched == plain
    assert patched.get("Items", patched.get("Item", patched.get("Responses"))) or operation == "get_item"


@pytest.mark.parametrize("request_of", [
    lambda t: {"TableName": t, "IndexName": "by_stamp", "KeyConditionExpression": "shard = :p AND stamp > :a",
               "ExpressionAttributeValues": {":p": {"S": "s0"}, ":a": {"S": "2027"}}},
    lambda t: {"TableName": t, "IndexName": "by_stamp", "KeyConditionExpression": "shard = :p",
               "ExpressionAttributeValues": {":p": {"S": "no-such-shard"}}},
    lambda t: {"TableName": t, "KeyConditionExpression": "pk = :p",
               "ExpressionAttributeValues": {":p": {"S": "no-such-book"}}},
])
def test_empty_answers_match_plain_moto(both, request_of):
    patched, plain = answers(both[1], "query", **request_of(both[0]))
    assert patched == plain and patched["Count"] == 0


def test_a_whole_table_pages_the_same(both):
    table, clients = both
    pages = []
    for client in clients:
        items, request = [], {"TableName": table, "Limit": 9}
        while True:
            response = client.scan(**request)
            items += response["Items"]
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        pages.append(items)
    assert pages[0] == pages[1] and len(pages[0]) == len(ITEMS)
    assert {bytes(item["cover"]["B"]) for item in pages[0]} == {bytes(item["cover"]["B"]) for item in ITEMS}


def gsi_partitions(client, table: str) -> list[dict]:
    answers_by_value = []
    for value in ("all", "moved", "new"):
        response = client.query(TableName=table, IndexName="by_all", KeyConditionExpression="gsi_pk = :p",
                                ExpressionAttributeValues={":p": {"S": value}})
        answers_by_value.append(unordered_sets(response["Items"]))
    for shard in ("s0", "s1"):  # the change feed's shape: a sort key moved by writes, read from a position
        response = client.query(TableName=table, IndexName="by_stamp",
                                KeyConditionExpression="shard = :p AND stamp > :a",
                                ExpressionAttributeValues={":p": {"S": shard}, ":a": {"S": "2026-01-08"}})
        answers_by_value.append(unordered_sets(response["Items"]))
    return answers_by_value


def test_index_queries_follow_every_kind_of_write(both):
    table, clients = both
    key = {"pk": {"S": "book-0"}, "sk": {"N": "3"}}
    writes = [
        ("put_item", {"TableName": table, "Item": {"pk": {"S": "book-9"}, "sk": {"N": "1"}, "gsi_pk": {"S": "new"}}}),
        ("update_item", {"TableName": table, "Key": key, "UpdateExpression": "SET gsi_pk = :m",
                         "ExpressionAttributeValues": {":m": {"S": "moved"}}}),
        ("update_item", {"TableName": table, "Key": {"pk": {"S": "book-2"}, "sk": {"N": "11"}},
                         "UpdateExpression": "SET stamp = :s", "ExpressionAttributeValues": {":s": {"S": "2026-02"}}}),
        ("update_item", {"TableName": table, "Key": {"pk": {"S": "book-2"}, "sk": {"N": "8"}},
                         "UpdateExpression": "REMOVE stamp"}),
        ("delete_item", {"TableName": table, "Key": {"pk": {"S": "book-1"}, "sk": {"N": "4"}}}),
        ("batch_write_item", {"RequestItems": {table: [
            {"PutRequest": {"Item": {"pk": {"S": "book-9"}, "sk": {"N": "2"}, "gsi_pk": {"S": "new"}}}},
            {"DeleteRequest": {"Key": {"pk": {"S": "book-2"}, "sk": {"N": "5"}}}}]}}),
        ("transact_write_items", {"TransactItems": [  # cancelled: the first write must not stay
            {"Update": {"TableName": table, "Key": {"pk": {"S": "book-9"}, "sk": {"N": "1"}},
                        "UpdateExpression": "SET gsi_pk = :m", "ExpressionAttributeValues": {":m": {"S": "moved"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": "book-0"}, "sk": {"N": "6"}, "gsi_pk": {"S": "new"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}}]}),
    ]
    for operation, request in writes:
        for client in clients:
            try:
                getattr(client, operation)(**request)
            except client.exceptions.TransactionCanceledException:
                assert operation == "transact_write_items"
        patched, plain = (gsi_partitions(client, table) for client in clients)
        assert patched == plain, operation
    moved, new, recent = patched[1], patched[2], patched[3] + patched[4]
    assert "11" in [item["sk"]["N"] for item in recent] and "8" not in [item["sk"]["N"] for item in recent]
    assert [item["sk"]["N"] for item in moved] == ["3"] and [item["sk"]["N"] for item in new] == ["1", "2"]


def resident_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads resident memory from /proc")
def test_reads_do_not_keep_memory():
    """moto keeps every item object it creates; every read creates copies (about 700 bytes an item)."""
    with running_moto() as moto:
        client = local_dynamodb(moto.endpoint)
        client.create_table(TableName="memory", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        for n in range(300):
            client.put_item(TableName="memory", Item={"pk": {"S": f"k{n}"}, "body": {"S": "x" * 300}})
        client.scan(TableName="memory")  # warm up what is allocated once
        before = resident_mb(moto.pid)
        for _ in range(100):  # 30,000 item copies: ~20 MB kept by plain moto
            client.scan(TableName="memory")
        grown = resident_mb(moto.pid) - before
        assert grown < 8, f"the emulator kept {grown:.1f} MB after 100 scans"


def test_the_emulator_refuses_any_other_moto_version_in_one_line():
    # Another moto, as a floating install would bring: the patch must not start on internals it never saw.
    code = ("import importlib.metadata as m; real = m.version; "
            "m.version = lambda name: '5.9.0' if name == 'moto' else real(name); "
            "import runpy; runpy.run_module('bookrec_local.emulator', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code, "0"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"the emulator needs moto {REQUIRED_MOTO} (it patches moto's internals), found 5.9.0: "
        f"pip install -c constraints.txt 'moto[server]=={REQUIRED_MOTO}'"]
    assert unsupported_moto() is None  # the installed one is the pinned one
