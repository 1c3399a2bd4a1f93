"""Bulk, deterministic, realistic Chargebee data for load and soak runs (`POST /__admin/seed`).

Goes through the same record builders as the API (so seeded rows are indistinguishable from
created ones) but skips HTTP: 100,000 customers take seconds, not an hour of round trips.
"""

from __future__ import annotations

from talkqa.sandbox import chargebee
from talkqa.sandbox.state import SandboxState

FIRST = ("Ada", "Alan", "Grace", "Linus", "Margaret", "Edsger", "Barbara", "Donald", "Frances",
         "Ken", "Radia", "Tim", "Sophie", "Ole", "Ingrid", "Kari", "Lars", "Mei", "Amara", "Jonas")
LAST = ("Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Dijkstra", "Liskov", "Knuth",
        "Allen", "Thompson", "Perlman", "Berners-Lee", "Wilson", "Dahl", "Nygaard", "Berg",
        "Hansen", "Chen", "Okafor", "Lind")
COMPANIES = ("Fjord Analytics", "Northwind", "Acme", "Globex", "Initech", "Umbrella Labs",
             "Stark Industries", "Wayne Enterprises", "Hooli", "Vandelay Imports")
PLACES = (  # city, ISO-2 country, ISO-4217 currency, state code
    ("Oslo", "NO", "NOK", None), ("Bergen", "NO", "NOK", None), ("Stockholm", "SE", "SEK", None),
    ("Copenhagen", "DK", "DKK", None), ("Berlin", "DE", "EUR", None), ("Paris", "FR", "EUR", None),
    ("London", "GB", "GBP", None), ("New York", "US", "USD", "NY"),
    ("San Francisco", "US", "USD", "CA"), ("Toronto", "CA", "CAD", "ON"),
)
STREETS = ("Storgata", "Main Street", "Kongens gate", "High Street", "Rue de Rivoli",
           "Unter den Linden", "Market Street", "Queen Street")
PRODUCTS = ("Starter", "Growth", "Scale", "Enterprise", "Support", "Onboarding", "Storage",
            "Seats", "Analytics", "Backup")
FAMILIES = ("software", "services", "hardware")
KINDS = ("plan", "addon", "charge")


def seed_chargebee(state: SandboxState, customers: int = 0, items: int = 0,
                   orders: int = 0) -> dict[str, int]:
    """Add N customers, items and orders (each order on a fresh one-charge invoice of a
    customer drawn from all customers, seeded or not). Caller holds the state lock."""
    rng = state.rng
    for _ in range(customers):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        city, country, currency, state_code = rng.choice(PLACES)
        serial = state.next_number("seed.customer")
        email = f"{first}.{last}.{serial}@example.com".lower().replace("-", "")
        params: dict[str, object] = {
            "first_name": first, "last_name": last, "email": email,
            "company": rng.choice(COMPANIES), "phone": f"+47 {rng.randrange(10**7, 10**8)}",
            "preferred_currency_code": currency,
            "billing_address": {
                "first_name": first, "last_name": last,
                "line1": f"{rng.choice(STREETS)} {rng.randrange(1, 200)}", "city": city,
                "country": country, "zip": f"{rng.randrange(1000, 99999):05d}",
                **({"state_code": state_code} if state_code else {}),
            },
            "meta_data": '{"source": "seed"}',
        }
        chargebee.new_customer(state, params)
    families = state.table("chargebee.item_families")
    for family in FAMILIES if items else ():
        if families.get(family) is None:
            chargebee.new_item_family(state, {"id": family, "name": family.title()})
    for _ in range(items):
        serial = state.next_number("seed.item")
        name = f"{rng.choice(PRODUCTS)} {serial:06d}"
        chargebee.new_item(state, {
            "id": f"item-{serial:06d}", "name": name, "type": rng.choice(KINDS),
            "item_family_id": rng.choice(FAMILIES), "description": f"{name} (seeded)",
        })
    customer_rows = [row for row in state.table("chargebee.customers").rows
                     if not row.get("deleted")]
    if orders and not customer_rows:
        chargebee.new_customer(state, {"first_name": "Seed", "last_name": "Customer"})
        customer_rows = state.table("chargebee.customers").rows[-1:]
    for _ in range(orders):
        customer = rng.choice(customer_rows)
        currency = customer.get("preferred_currency_code", "USD")
        invoice = chargebee.new_invoice(state, {
            "customer_id": customer["id"], "currency_code": currency,
            "charges": [{"amount": str(rng.randrange(500, 500_000)),
                         "description": f"{rng.choice(PRODUCTS)} subscription"}],
        })
        chargebee.new_order(state, {"invoice_id": invoice["id"],
                                    "status": rng.choice(("new", "processing", "complete"))})
    return {"customers": customers, "items": items, "orders": orders}
