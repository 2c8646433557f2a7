"""The marketplace's own state: sellers, listings, inventory, users, interactions, orders.

Each service changes state and appends the matching event to the outbox in one transaction.
`scope` arguments carry a merchant's seller id: a scoped caller sees only its own rows, and a
row of another seller is reported as not found (never as forbidden, which would leak it).
"""

from marketpilot.marketplace.interactions import InteractionService
from marketpilot.marketplace.inventory import InventoryService
from marketpilot.marketplace.listings import ListingService
from marketpilot.marketplace.orders import OrderService
from marketpilot.marketplace.sellers import SellerService
from marketpilot.marketplace.users import UserService

__all__ = [
    "InteractionService",
    "InventoryService",
    "ListingService",
    "OrderService",
    "SellerService",
    "UserService",
]
