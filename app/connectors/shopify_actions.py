"""The Shopify Admin GraphQL documents that act on an order, and the read-backs that check them.

Validated against the 2026-01 schema in the tests. Only `refundCreate` takes an idempotency key;
the other mutations are sent once per action and, when their outcome is lost, read back instead.
"""

from __future__ import annotations

MONEY_BAG = "{ shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }"

# What a refund of these lines would be, taxes included, and through which payment to send it.
SUGGESTED_REFUND_QUERY = f"""
query SuggestedRefund($id: ID!, $refundLineItems: [RefundLineItemInput!]) {{
  order(id: $id) {{
    id
    suggestedRefund(refundLineItems: $refundLineItems) {{
      amountSet {MONEY_BAG}
      totalTaxSet {MONEY_BAG}
      suggestedTransactions {{
        gateway
        kind
        parentTransaction {{ id }}
        amountSet {MONEY_BAG}
      }}
    }}
  }}
}}
"""

REFUND_FIELDS = f"id note createdAt totalRefundedSet {MONEY_BAG}"

# What one refund covered, line by line (the units it settled). Asked of one refund at a time: the
# lines of every refund of an order in one query could cost more points than a query may.
REFUND_LINES_QUERY = """
query RefundLines($id: ID!) {
  refund(id: $id) {
    id
    refundLineItems(first: 250) { pageInfo { hasNextPage } nodes { quantity lineItem { id } } }
  }
}
"""

REFUND_CREATE_MUTATION = f"""
mutation RefundCreate($input: RefundInput!, $key: String!) {{
  refundCreate(input: $input) @idempotent(key: $key) {{
    refund {{ {REFUND_FIELDS} }}
    userErrors {{ field message }}
  }}
}}
"""

ORDER_REFUNDS_QUERY = f"""
query OrderRefunds($id: ID!) {{
  order(id: $id) {{
    id
    refunds(first: 100) {{ {REFUND_FIELDS} }}
  }}
}}
"""

# A return names fulfilment line items, not the order's line items.
FULFILLMENT_LINES_QUERY = """
query FulfillmentLines($id: ID!) {
  order(id: $id) {
    id
    fulfillments(first: 50) {
      status
      fulfillmentLineItems(first: 100) { nodes { id quantity lineItem { id } } }
    }
  }
}
"""

RETURN_FIELDS = """
id
name
status
createdAt
returnLineItems(first: 100) { nodes { id quantity processedQuantity } }
exchangeLineItems(first: 100) { nodes { id quantity processedQuantity variantId } }
"""

RETURN_CREATE_MUTATION = f"""
mutation ReturnCreate($input: ReturnInput!) {{
  returnCreate(returnInput: $input) {{
    return {{ {RETURN_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}
"""

RETURN_PROCESS_MUTATION = f"""
mutation ReturnProcess($input: ReturnProcessInput!) {{
  returnProcess(input: $input) {{
    return {{ {RETURN_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}
"""

ORDER_RETURNS_QUERY = f"""
query OrderReturns($id: ID!) {{
  order(id: $id) {{
    id
    returns(first: 50) {{ nodes {{ {RETURN_FIELDS} }} }}
  }}
}}
"""

# The customer's GID only: store credit is credited to the account's owner.
ORDER_CUSTOMER_QUERY = """
query OrderCustomer($id: ID!) {
  order(id: $id) { id customer { id } }
}
"""

CREDIT_FIELDS = "id createdAt amount { amount currencyCode }"

STORE_CREDIT_MUTATION = f"""
mutation StoreCreditCredit($id: ID!, $creditInput: StoreCreditAccountCreditInput!) {{
  storeCreditAccountCredit(id: $id, creditInput: $creditInput) {{
    storeCreditAccountTransaction {{ {CREDIT_FIELDS} }}
    userErrors {{ field message code }}
  }}
}}
"""

STORE_CREDITS_QUERY = f"""
query StoreCredits($id: ID!) {{
  customer(id: $id) {{
    id
    storeCreditAccounts(first: 10) {{
      nodes {{
        id
        transactions(first: 50, reverse: true, query: "type:credit") {{
          nodes {{ ... on StoreCreditAccountCreditTransaction {{ {CREDIT_FIELDS} }} }}
        }}
      }}
    }}
  }}
}}
"""
