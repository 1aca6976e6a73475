"""Realistic source payloads, as JSON text (the numbers' text is what is under test)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec

_ENCODER = msgspec.json.Encoder(decimal_format="number")

QUOTE_ID = "5b0c5a3e-7d2f-4c1b-9a53-2f6d1e0c8a41"

QUOTE_STARTED = """{
  "id": "5b0c5a3e-7d2f-4c1b-9a53-2f6d1e0c8a41",
  "reference": "QTE-2024-000123",
  "contact": {
    "firstName": "Priya",
    "lastName": "Shah",
    "email": "priya@shahbakery.example",
    "phone": "+44 7700 900123",
    "businessType": "Limited company",
    "businessName": "Shah Bakery Ltd",
    "businessNumber": "12345678",
    "tradingName": "Shah's Kitchen",
    "industry": [{"id": 5611, "value": "bakery", "text": "Bakery", "label": "Bakeries"}],
    "turnover": 250000.00,
    "employeeCount": 7,
    "effectiveDate": "2024-04-01",
    "ipAddress": "203.0.113.7",
    "dateOfBirth": "1984-02-29",
    "marketingConsent": false
  },
  "timestamp": "2024-03-14T09:26:53.589Z",
  "isFirstQuote": true,
  "channel": "web"
}"""

#: Public liability with three rates (the last declined, unpriced) and employers'
#: liability with one; 0.1 + 0.2 = 0.3 in the second rate, exactly.
PRODUCTS_UPDATED = """{
  "quoteId": "5b0c5a3e-7d2f-4c1b-9a53-2f6d1e0c8a41",
  "products": [
    {
      "id": "prod-pl-1",
      "key": "public-liability",
      "name": "Public Liability",
      "total": 1234.56,
      "ipt": 132.28,
      "agencyProduct": {"guid": "0d6f3c1e-1111-4a2b-8c3d-4e5f60718293", "name": "PL Select"},
      "rates": [
        {
          "key": "pl-1m",
          "description": "£1m limit",
          "isOffered": true,
          "basePremium": 1000.00,
          "loading": 150.00,
          "discount": -47.72,
          "ipt": 132.28,
          "commission": 220.57,
          "total": 1234.56,
          "status": "Quoted",
          "ratingAttributes": {"limit": 1000000, "excess": 250.00, "band": "B"},
          "ratingInputs": {"turnover": 250000.00, "employees": 7, "claims": []},
          "errors": []
        },
        {
          "key": "pl-2m",
          "description": "£2m limit",
          "isOffered": true,
          "basePremium": 0.1,
          "loading": 0.2,
          "discount": 0,
          "ipt": 0.00,
          "commission": 0.03,
          "total": 0.3,
          "status": "Quoted",
          "ratingAttributes": {},
          "ratingInputs": {},
          "errors": []
        },
        {
          "key": "pl-5m",
          "description": "£5m limit",
          "isOffered": false,
          "basePremium": null,
          "loading": null,
          "discount": null,
          "ipt": null,
          "commission": null,
          "total": null,
          "status": "Declined",
          "ratingAttributes": {},
          "ratingInputs": {},
          "errors": [{"code": "LIMIT_TOO_HIGH", "message": "Refer to underwriter"}]
        }
      ]
    },
    {
      "id": "prod-el-1",
      "key": "employers-liability",
      "name": "Employers' Liability",
      "total": 98765.43,
      "ipt": 0.01,
      "agencyProduct": null,
      "rates": [
        {
          "key": "el-10m",
          "description": null,
          "isOffered": true,
          "basePremium": 98000,
          "loading": 765.42,
          "discount": 0,
          "ipt": 0.01,
          "commission": 9876.54,
          "total": 98765.43,
          "status": "Quoted",
          "ratingAttributes": {"limit": 10000000},
          "ratingInputs": {"employees": 7},
          "errors": []
        }
      ]
    }
  ]
}"""


def as_dict(text: str) -> dict[str, Any]:
    """``text`` parsed with exact numbers, to be changed by a test and sent as JSON."""
    value: dict[str, Any] = json.loads(text, parse_float=Decimal)
    return value


def to_json(value: Any) -> bytes:
    """``value`` as JSON text, Decimals written as the numbers they are."""
    return _ENCODER.encode(value)


def envelope(event_type: str, data: Any, version: Any = 1) -> dict[str, Any]:
    return {"type": event_type, "version": version, "data": data}
