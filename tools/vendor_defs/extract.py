"""Extract the sandboxes' vendor definitions from the vendors' own published sources.

Run by hand by a maintainer when a vendor publishes a new version; the sandboxes and the
conformance tests read only the committed output (`talkqa/sandbox/defs/*.json`), never the
sources, and no third-party source is committed.

    python tools/vendor_defs/extract.py chargebee --version 3.33.0
    python tools/vendor_defs/extract.py invoiced --repo PATH_TO_Invoiced_api_CLONE [--rev REV]

Chargebee: the npm package `chargebee` (generated from Chargebee's OpenAPI spec) ships, per
resource, zod request schemas (`cjs/schema/*.schema.js`: parameters with max lengths and
enums, list filters with their operators, sort_by attributes) and TypeScript types
(`types/resources/*.d.ts`: response attributes, `?` marking the optional ones). `npm pack`
fetches it into a temporary folder; node and zod turn the schemas into JSON Schema.

Invoiced: the repository Invoiced/api, the source of its API reference: one example object
per resource (`data/**/object.json`, every attribute present, as the API always returns
them) and the reference's parameter tables (`source/includes/_*.md.erb`).

Facts no machine-readable source states are in CURATED below, each with where it comes from.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE.parents[1] / "talkqa" / "sandbox" / "defs"
Json = dict[str, Any]

# resource -> its zod schema module, its d.ts file, and operation -> exported schema name
CHARGEBEE: dict[str, tuple[str, str, dict[str, str]]] = {
    "customer": ("customer", "Customer", {
        "create": "CreateCustomerBodySchema", "update": "UpdateCustomerBodySchema",
        "update_billing_info": "UpdateBillingInfoCustomerBodySchema",
        "delete": "DeleteCustomerBodySchema", "list": "ListCustomerBodySchema",
    }),
    "item_family": ("item_family", "ItemFamily", {
        "create": "CreateItemFamilyBodySchema", "update": "UpdateItemFamilyBodySchema",
        "list": "ListItemFamilyBodySchema",
    }),
    "item": ("item", "Item", {
        "create": "CreateItemBodySchema", "update": "UpdateItemBodySchema",
        "list": "ListItemBodySchema",
    }),
    "invoice": ("invoice", "Invoice", {
        "create": "CreateInvoiceBodySchema", "list": "ListInvoiceBodySchema",
    }),
    "order": ("order", "Order", {
        "create": "CreateOrderBodySchema", "update": "UpdateOrderBodySchema",
        "list": "ListOrderBodySchema",
    }),
    "event": ("event", "Event", {"list": "ListEventBodySchema"}),
    # Product catalog 2.0: a subscription is made of item prices, and an Address exists only
    # on a subscription (retrieve and update by subscription_id + label; no id, no list)
    "item_price": ("item_price", "ItemPrice", {
        "create": "CreateItemPriceBodySchema", "list": "ListItemPriceBodySchema",
    }),
    "subscription": ("subscription", "Subscription", {
        "create_with_items": "CreateWithItemsSubscriptionBodySchema",
        "list": "ListSubscriptionBodySchema",
    }),
    "address": ("address", "Address", {
        "retrieve": "RetrieveAddressBodySchema", "update": "UpdateAddressBodySchema",
    }),
    # Every operation Chargebee offers on a business entity: transfers only, no create,
    # retrieve, list or update (the vendor-impossible facts of talkqa/systems/no_api.py)
    "business_entity": ("business_entity", "BusinessEntity", {
        "create_transfers": "CreateTransfersBusinessEntityBodySchema",
        "get_transfers": "GetTransfersBusinessEntityBodySchema",
    }),
}

# objects inside a resource (no operations of their own) -> the d.ts file and nested interface
CHARGEBEE_NESTED: dict[str, tuple[str, str]] = {
    "order_line_item": ("Order", "OrderLineItem"),
}

# resource -> (example object file, reference page, collection path)
INVOICED: dict[str, tuple[str, str, str]] = {
    "customer": ("data/customers/object.json", "source/includes/_customers.md.erb", "customers"),
    "item": ("data/items/object.json", "source/includes/_items.md.erb", "items"),
    "invoice": ("data/invoicing/invoices/object.json", "source/includes/_invoicing.md.erb",
                "invoices"),
    "event": ("data/events/object.json", "source/includes/_events.md.erb", "events"),
    # the objects of an invoice's `items`: no routes of their own
    "line_item": ("data/invoicing/line_items/object.json", "source/includes/_invoicing.md.erb",
                  "line_items"),
}

CURATED: Json = {
    "chargebee": {
        # API reference, "Pagination": lists without sort_by come newest first.
        "default_order": "newest_first",
        # API reference, every resource: `object` names the resource type in each answer
        # (the d.ts leave it to their `[key: string]: unknown` index signature).
        "always": {"object": {"type": "string", "required": True}},
        # API reference, "Error handling": the JSON error envelope.
        "error_fields": ["message", "type", "api_error_code", "param", "error_code",
                         "error_msg", "error_param", "http_status_code"],
    },
    "invoiced": {
        # API reference, "Pagination": per_page at most 100; lists come oldest first.
        "per_page_max": 100,
        "default_order": "oldest_first",
        # API reference, "Errors": {"type", "message", "param"}.
        "error_fields": ["type", "message", "param"],
    },
    # Attributes an example object cannot state, per resource.
    "invoiced_attributes": {
        "event": {
            # API reference, "Event Object": the attribute table lists `object` (`event`),
            # which the example object lacks.
            "object": {"type": "string", "required": True},
            # Same table: `previous` (the old values) exists only on `*.updated` events and
            # belongs inside `data`; the example shows it beside `data`.
            "previous": {"type": "object", "required": False},
        },
    },
}

_KEEP = ("type", "maxLength", "minLength", "enum", "minimum", "maximum", "format")


def run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"extract: `{' '.join(args)}` failed: {done.stderr.strip()[-400:]}")
    return done.stdout


# ---------------------------------------------------------------- chargebee
def chargebee(version: str) -> Json:
    if shutil.which("npm") is None or shutil.which("node") is None:
        sys.exit("extract: chargebee needs node and npm on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tarball = run(["npm", "pack", f"chargebee@{version}", "--silent"], work).strip()
        run(["tar", "xzf", tarball], work)
        package = work / "package"
        meta = json.loads((package / "package.json").read_text())
        zod = meta["dependencies"]["zod"]
        run(["npm", "install", "--no-save", "--silent", "--prefix", str(package),
             f"zod@{zod}"], work)
        modules = sorted({module for module, _, _ in CHARGEBEE.values()})
        schemas = json.loads(run(["node", str(HERE / "zod_to_json.cjs"), str(package),
                                  *modules], work))
        core = (package / "types" / "core.d.ts").read_text()
        enums = dict(re.findall(r"type (\w+Enum) =\s*([^;]+);", core))
        resources: Json = {}
        for name, (module, dts, operations) in CHARGEBEE.items():
            text = (package / "types" / "resources" / f"{dts}.d.ts").read_text()
            resources[name] = {
                "attributes": {**ts_attributes(text, dts, enums),
                               **CURATED["chargebee"]["always"]},
                "operations": {
                    op: cb_operation(op, schemas[module][schema])
                    for op, schema in operations.items()
                },
            }
        for name, (dts, interface) in CHARGEBEE_NESTED.items():
            text = (package / "types" / "resources" / f"{dts}.d.ts").read_text()
            resources[name] = {
                "attributes": {**ts_attributes(text, interface, enums, indent=4),
                               **CURATED["chargebee"]["always"]},
                "operations": {},
            }
        return {
            "vendor": "chargebee",
            "source": {"npm": f"chargebee@{meta['version']}", "zod": zod,
                       "files": ["cjs/schema/*.schema.js", "types/resources/*.d.ts"]},
            **{k: v for k, v in CURATED["chargebee"].items() if k != "always"},
            "resources": resources,
        }


def ts_attributes(text: str, interface: str, enums: dict[str, str], indent: int = 2) -> Json:
    """`name?: type;` lines of `export interface Name {` (at ``indent`` spaces: 2 for a
    resource, 4 for an object nested in its namespace): type, required, enum."""
    start = text.index(f"{' ' * indent}export interface {interface} {{")
    end = text.index(f"\n{' ' * indent}}}\n", start)
    body = text[start:end]
    attributes: Json = {}
    field = " " * (indent + 2)
    for name, optional, raw in re.findall(rf"^{field}(\w+)(\??):\s*([^;]+);", body, re.M):
        kind = " ".join(raw.split())
        attribute: Json = {"type": ts_type(kind, enums), "required": optional != "?"}
        values = ts_enum(kind, enums)
        if values:
            attribute["enum"] = values
        attributes[name] = attribute
    return attributes


def ts_enum(kind: str, enums: dict[str, str]) -> list[str]:
    kind = enums.get(kind, kind)
    values = re.findall(r"'([^']*)'", kind)
    return values if values and re.fullmatch(r"[|\s]*('[^']*'[|\s]*)+", kind) else []


def ts_type(kind: str, enums: dict[str, str]) -> str:
    if kind.endswith("[]") or kind.startswith("Array<"):
        return "array"
    if kind in enums or ts_enum(kind, enums) or kind == "string":
        return "string"
    return {"number": "number", "boolean": "boolean", "any": "any"}.get(kind, "object")


def compact(schema: Json) -> Json:
    """The facts of one JSON Schema property, recursively, without zod's noise."""
    out: Json = {k: schema[k] for k in _KEEP if k in schema}
    if out.get("minimum", 0) <= -(2**53) + 1:
        out.pop("minimum")
    if out.get("maximum", 0) >= 2**53 - 1:
        out.pop("maximum")
    if "properties" in schema:
        out["properties"] = {k: compact(v) for k, v in schema["properties"].items()}
    if "required" in schema:
        out["required"] = list(schema["required"])
    if isinstance(schema.get("items"), dict):
        out["items"] = compact(schema["items"])
    if "anyOf" in schema and "type" not in out:
        out["type"] = "any"
    return out


def cb_operation(op: str, schema: Json) -> Json:
    properties: Json = schema.get("properties", {})
    if op != "list":
        return {"params": {k: compact(v) for k, v in properties.items()},
                "required": list(schema.get("required", []))}
    filters: Json = {}
    params: Json = {}
    sort_by: list[str] = []
    for key, value in properties.items():
        if key == "sort_by":
            sort_by = list(value["properties"]["asc"]["enum"])
        elif value.get("type") == "object" and "properties" in value:
            filters[key] = {op_name: compact(op_schema)
                            for op_name, op_schema in value["properties"].items()}
        else:
            params[key] = compact(value)
    return {"params": params, "filters": filters, "sort_by": sort_by}


# ---------------------------------------------------------------- invoiced
def invoiced(repo: Path, rev: str) -> Json:
    commit = run(["git", "rev-parse", rev], repo).strip()

    def show(path: str) -> str:
        return run(["git", "show", f"{commit}:{path}"], repo)

    resources: Json = {}
    for name, (example, page, collection) in INVOICED.items():
        sections = md_sections(show(page))
        resources[name] = {
            "attributes": {
                **{key: {"type": json_type(value), "required": True}
                   for key, value in json.loads(show(example)).items()},
                **CURATED["invoiced_attributes"].get(name, {}),
            },
            "operations": {
                op: sections[f"{method} /{collection}{suffix}"]
                for op, method, suffix in (
                    ("create", "POST", ""), ("update", "PATCH", "/:id"),
                    ("list", "GET", ""), ("retrieve", "GET", "/:id"),
                    ("delete", "DELETE", "/:id"),
                    *((("void", "POST", "/:id/void"),) if name == "invoice" else ()),
                )
                if f"{method} /{collection}{suffix}" in sections
            },
        }
    return {
        "vendor": "invoiced",
        "source": {"github": "Invoiced/api", "commit": commit,
                   "files": ["data/**/object.json", "source/includes/_*.md.erb"]},
        **CURATED["invoiced"],
        "event_types": event_types(show(INVOICED["event"][1])),
        "resources": resources,
    }


def event_types(text: str) -> list[str]:
    """The `- `object.action`` bullets of the reference's "Event Types" section (webhooks
    deliver the same events; catalog items have none)."""
    section = re.split(r"^## ", text.split("## Event Types", 1)[1], flags=re.M)[0]
    return re.findall(r"^- `([a-z_]+\.[a-z_]+)`", section, re.M)


def json_type(value: Any) -> str:
    """The JSON type of an example value; null examples say only that the key exists."""
    if value is None:
        return "any"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


_ROW = re.compile(r"^\*\*(\w+)\*\*\s*(?:\|\s*)?\*(\w+)\*\s*\|\s*(.*)$")


def md_sections(text: str) -> dict[str, Json]:
    """`METHOD /path` of each `## ` section -> its parameter table (name -> type, required)."""
    out: dict[str, Json] = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        request = re.search(r"^`(GET|POST|PATCH|DELETE) (/\S+)`", section, re.M)
        if request is None:
            continue
        params: Json = {}
        required: list[str] = []
        for line in section[request.end():].splitlines():
            row = _ROW.match(line.strip())
            if row is None:
                continue
            key, kind, description = row.groups()
            params[key] = {"type": kind}
            if "**required**" in description:
                required.append(key)
        out[f"{request.group(1)} {request.group(2)}"] = {"params": params, "required": required}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="vendor", required=True)
    cb = sub.add_parser("chargebee")
    cb.add_argument("--version", default="latest", help="npm version of `chargebee`")
    inv = sub.add_parser("invoiced")
    inv.add_argument("--repo", type=Path, required=True,
                     help="a clone (or bare mirror) of github.com/Invoiced/api")
    inv.add_argument("--rev", default="HEAD")
    args = parser.parse_args()
    defs = chargebee(args.version) if args.vendor == "chargebee" else invoiced(args.repo, args.rev)
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / f"{args.vendor}.json"
    target.write_text(json.dumps(defs, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {target.relative_to(HERE.parents[1])}")


if __name__ == "__main__":
    main()
