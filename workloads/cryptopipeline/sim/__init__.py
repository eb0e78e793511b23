"""coinbase-sim: a local exchange speaking Coinbase Exchange's WebSocket feed and REST API,
and Advanced Trade's order endpoints (one simulated account).

Synthetic (seeded) or replayed markets, fault injection per connection, and the ground truth
of every trade it published.
"""

from cryptopipeline.sim._config import SimConfig
from cryptopipeline.sim._events import MarketEvent, Quote, Trade
from cryptopipeline.sim._faults import FaultPlan
from cryptopipeline.sim._products import ProductSpec, product_spec
from cryptopipeline.sim._replay import ReplayMarket
from cryptopipeline.sim._server import SimServer
from cryptopipeline.sim._synthetic import SyntheticMarket

__all__ = [
    "FaultPlan",
    "MarketEvent",
    "ProductSpec",
    "Quote",
    "ReplayMarket",
    "SimConfig",
    "SimServer",
    "SyntheticMarket",
    "Trade",
    "product_spec",
]
