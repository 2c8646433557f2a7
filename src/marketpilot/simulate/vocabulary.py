"""Fixed vocabularies the simulated world is built from.

Everything here is plain data and independent of the seed: the seed decides which words go
together (and the latent vectors behind them), never which words exist. Keeping the words
fixed means two simulations with different seeds still speak the same language, so a
content model trained on one can be evaluated on another.

No entry may contain a double quote, a backslash or a '/' inside a category name: the
listing text is assembled by string concatenation into CSV cells and JSON objects.
"""

from __future__ import annotations

# top-level -> mid-level -> leaf -> nouns a title may use for an item of that leaf.
# Leaves also carry how the item is sized: "apparel", "shoes" or "none".
CATEGORY_TREE: dict[str, dict[str, dict[str, tuple[str, tuple[str, ...]]]]] = {
    "fashion": {
        "women": {
            "dresses": ("apparel", ("dress", "maxi dress", "midi dress", "shirt dress")),
            "tops": ("apparel", ("blouse", "t-shirt", "tank top", "knit top")),
            "shoes": ("shoes", ("sneakers", "ankle boots", "sandals", "pumps")),
            "bags": ("none", ("handbag", "tote bag", "clutch", "shoulder bag")),
            "jackets": ("apparel", ("jacket", "trench coat", "blazer", "puffer coat")),
        },
        "men": {
            "shirts": ("apparel", ("shirt", "polo shirt", "flannel shirt", "oxford shirt")),
            "trousers": ("apparel", ("jeans", "chinos", "cargo trousers", "joggers")),
            "shoes": ("shoes", ("sneakers", "chelsea boots", "loafers", "derby shoes")),
            "jackets": ("apparel", ("parka", "bomber jacket", "wool coat", "rain jacket")),
        },
        "kids": {
            "clothing": ("apparel", ("romper", "hoodie", "kids t-shirt", "pyjama set")),
            "shoes": ("shoes", ("kids sneakers", "rain boots", "kids sandals")),
            "accessories": ("none", ("school backpack", "beanie", "mittens")),
        },
        "accessories": {
            "watches": ("none", ("watch", "chronograph", "dive watch")),
            "jewellery": ("none", ("necklace", "ring", "bracelet", "earrings")),
            "sunglasses": ("none", ("sunglasses", "aviator sunglasses")),
            "belts": ("none", ("leather belt", "canvas belt")),
        },
    },
    "electronics": {
        "phones": {
            "smartphones": ("none", ("smartphone", "phone")),
            "cases": ("none", ("phone case", "screen protector", "folio case")),
            "chargers": ("none", ("charger", "power bank", "charging cable")),
        },
        "computers": {
            "laptops": ("none", ("laptop", "notebook", "ultrabook")),
            "monitors": ("none", ("monitor", "gaming monitor", "display")),
            "peripherals": ("none", ("keyboard", "mouse", "webcam")),
            "storage": ("none", ("ssd", "external hard drive", "usb stick")),
        },
        "audio": {
            "headphones": ("none", ("headphones", "earbuds", "headset")),
            "speakers": ("none", ("speaker", "soundbar", "bluetooth speaker")),
            "turntables": ("none", ("turntable", "record player")),
        },
        "cameras": {
            "cameras": ("none", ("camera", "mirrorless camera", "instant camera")),
            "lenses": ("none", ("lens", "zoom lens", "prime lens")),
            "drones": ("none", ("drone", "camera drone")),
        },
        "gaming": {
            "consoles": ("none", ("console", "handheld console")),
            "games": ("none", ("video game", "game bundle")),
            "controllers": ("none", ("controller", "gamepad", "racing wheel")),
        },
    },
    "home": {
        "furniture": {
            "chairs": ("none", ("chair", "armchair", "office chair")),
            "tables": ("none", ("dining table", "coffee table", "desk")),
            "sofas": ("none", ("sofa", "corner sofa", "loveseat")),
            "shelves": ("none", ("bookshelf", "wall shelf", "cabinet")),
        },
        "kitchen": {
            "cookware": ("none", ("frying pan", "saucepan", "dutch oven")),
            "knives": ("none", ("chef knife", "knife set", "bread knife")),
            "appliances": ("none", ("blender", "kettle", "toaster", "coffee maker")),
            "tableware": ("none", ("plate set", "mug", "wine glasses")),
        },
        "decor": {
            "lamps": ("none", ("table lamp", "floor lamp", "pendant light")),
            "rugs": ("none", ("rug", "runner rug")),
            "mirrors": ("none", ("wall mirror", "floor mirror")),
            "cushions": ("none", ("cushion", "throw pillow", "blanket")),
        },
        "bedding": {
            "duvets": ("none", ("duvet", "quilt")),
            "pillows": ("none", ("pillow", "memory foam pillow")),
            "sheets": ("none", ("bed sheet set", "duvet cover")),
        },
    },
    "sports": {
        "cycling": {
            "bikes": ("none", ("road bike", "city bike", "mountain bike", "e-bike")),
            "helmets": ("none", ("bike helmet", "helmet")),
            "bike-lights": ("none", ("bike light set", "rear light")),
        },
        "running": {
            "running-shoes": ("shoes", ("running shoes", "trail shoes")),
            "running-apparel": ("apparel", ("running shirt", "running tights", "running jacket")),
            "fitness-trackers": ("none", ("fitness tracker", "gps watch")),
        },
        "outdoor": {
            "tents": ("none", ("tent", "ultralight tent", "family tent")),
            "backpacks": ("none", ("hiking backpack", "daypack")),
            "sleeping-bags": ("none", ("sleeping bag", "sleeping pad")),
        },
        "fitness": {
            "weights": ("none", ("dumbbells", "kettlebell", "weight plates")),
            "yoga": ("none", ("yoga mat", "yoga block", "foam roller")),
            "bands": ("none", ("resistance bands", "pull-up band")),
        },
        "team-sports": {
            "footballs": ("none", ("football", "training ball")),
            "basketballs": ("none", ("basketball", "basketball hoop")),
            "jerseys": ("apparel", ("jersey", "training jersey")),
        },
    },
    "toys": {
        "building": {
            "building-sets": ("none", ("building set", "construction kit")),
            "blocks": ("none", ("wooden blocks", "magnetic tiles")),
        },
        "games": {
            "board-games": ("none", ("board game", "strategy game")),
            "puzzles": ("none", ("jigsaw puzzle", "3d puzzle")),
            "card-games": ("none", ("card game", "trading cards")),
        },
        "dolls": {
            "dolls": ("none", ("doll", "doll house")),
            "plush": ("none", ("plush toy", "teddy bear")),
            "figures": ("none", ("action figure", "figure set")),
        },
        "outdoor-toys": {
            "scooters": ("none", ("kick scooter", "balance bike")),
            "playground": ("none", ("trampoline", "swing set", "sandbox")),
        },
        "baby": {
            "strollers": ("none", ("stroller", "pram", "buggy")),
            "car-seats": ("none", ("car seat", "booster seat")),
            "baby-monitors": ("none", ("baby monitor", "video baby monitor")),
        },
    },
    "media": {
        "books": {
            "fiction": ("none", ("novel", "thriller", "fantasy novel")),
            "non-fiction": ("none", ("biography", "history book", "science book")),
            "cookbooks": ("none", ("cookbook", "baking book")),
            "childrens-books": ("none", ("picture book", "children's book")),
            "comics": ("none", ("comic", "graphic novel", "manga volume")),
        },
        "music": {
            "vinyl": ("none", ("vinyl record", "lp", "box set")),
            "cds": ("none", ("cd", "album")),
        },
        "film": {
            "blu-ray": ("none", ("blu-ray", "4k blu-ray")),
            "dvd": ("none", ("dvd", "dvd box set")),
        },
    },
    "beauty": {
        "skincare": {
            "moisturisers": ("none", ("moisturiser", "day cream", "night cream")),
            "serums": ("none", ("serum", "face oil")),
            "cleansers": ("none", ("cleanser", "micellar water")),
        },
        "makeup": {
            "lipstick": ("none", ("lipstick", "lip gloss")),
            "mascara": ("none", ("mascara", "eyeliner")),
            "foundation": ("none", ("foundation", "concealer")),
        },
        "fragrance": {
            "perfume": ("none", ("perfume", "eau de parfum")),
            "eau-de-toilette": ("none", ("eau de toilette", "cologne")),
        },
        "haircare": {
            "shampoo": ("none", ("shampoo", "conditioner")),
            "hair-tools": ("none", ("hair dryer", "straightener", "curling iron")),
        },
    },
    "garden": {
        "garden": {
            "lawn-mowers": ("none", ("lawn mower", "robot mower")),
            "planters": ("none", ("planter", "raised bed")),
            "garden-furniture": ("none", ("garden chair", "patio set", "hammock")),
            "hoses": ("none", ("garden hose", "hose reel")),
        },
        "tools": {
            "drills": ("none", ("cordless drill", "impact driver")),
            "saws": ("none", ("circular saw", "jigsaw", "hand saw")),
            "tool-sets": ("none", ("tool set", "socket set")),
        },
        "plants": {
            "indoor-plants": ("none", ("monstera", "succulent set", "fiddle leaf fig")),
            "seeds": ("none", ("seed kit", "herb seeds")),
        },
    },
}

# Typical price (major units) of an item in each top-level category; leaves vary around it.
TOP_LEVEL_PRICE: dict[str, float] = {
    "fashion": 45.0, "electronics": 180.0, "home": 90.0, "sports": 70.0,
    "toys": 30.0, "media": 15.0, "beauty": 25.0, "garden": 60.0,
}

# Mean price elasticity per top-level category (leaves vary around it; always negative).
TOP_LEVEL_ELASTICITY: dict[str, float] = {
    "fashion": -2.0, "electronics": -1.6, "home": -1.3, "sports": -1.5,
    "toys": -1.7, "media": -0.9, "beauty": -1.1, "garden": -1.2,
}

# Yearly demand peak (day of year) and amplitude (log scale) per top-level category.
TOP_LEVEL_SEASON: dict[str, tuple[int, float]] = {
    "fashion": (100, 0.25), "electronics": (345, 0.45), "home": (310, 0.2), "sports": (170, 0.4),
    "toys": (350, 0.7), "media": (355, 0.35), "beauty": (350, 0.3), "garden": (130, 0.6),
}

# Weekly shape per top-level category, Monday..Sunday (log scale, re-centred per category).
TOP_LEVEL_WEEKLY: dict[str, tuple[float, ...]] = {
    "fashion": (-0.05, -0.05, -0.03, 0.0, 0.05, 0.08, 0.0),
    "electronics": (0.02, 0.02, 0.02, 0.03, 0.0, -0.04, -0.05),
    "home": (-0.08, -0.08, -0.06, -0.03, 0.03, 0.12, 0.1),
    "sports": (-0.04, -0.04, -0.02, 0.0, 0.02, 0.04, 0.04),
    "toys": (-0.05, -0.05, -0.05, -0.02, 0.02, 0.08, 0.07),
    "media": (0.0, 0.0, 0.0, 0.0, 0.0, 0.03, 0.05),
    "beauty": (0.0, 0.0, 0.02, 0.02, 0.03, 0.0, -0.05),
    "garden": (-0.1, -0.08, -0.06, -0.03, 0.02, 0.15, 0.12),
}

# Style words: each gets its own latent direction, so a title's words carry its item's taste.
STYLES: tuple[str, ...] = (
    "vintage", "retro", "classic", "modern", "minimalist", "rustic", "industrial", "boho",
    "sporty", "elegant", "luxury", "budget", "compact", "professional", "eco-friendly",
    "handmade", "wireless", "waterproof", "lightweight", "heavy-duty", "colourful",
    "scandinavian", "urban", "outdoor", "smart", "organic", "ergonomic", "portable",
    "limited edition", "oversized",
)

# One sentence per style word for descriptions.
STYLE_PHRASES: dict[str, str] = {
    "vintage": "A timeless piece with real character.",
    "retro": "Throwback looks with today's build quality.",
    "classic": "A classic design that never goes out of fashion.",
    "modern": "Clean modern lines for a contemporary setting.",
    "minimalist": "Pared back to what matters, nothing more.",
    "rustic": "Warm rustic textures and natural finishes.",
    "industrial": "Raw industrial look with sturdy construction.",
    "boho": "Relaxed boho spirit with playful details.",
    "sporty": "Built for movement and an active day.",
    "elegant": "Refined and elegant for special occasions.",
    "luxury": "Premium materials and luxurious finish.",
    "budget": "Great value without compromising on the basics.",
    "compact": "Compact size that fits anywhere.",
    "professional": "Professional grade for demanding users.",
    "eco-friendly": "Made with sustainable, eco-friendly materials.",
    "handmade": "Handmade in small batches with care.",
    "wireless": "Wireless freedom with no cables in the way.",
    "waterproof": "Waterproof and ready for any weather.",
    "lightweight": "Lightweight and easy to carry.",
    "heavy-duty": "Heavy-duty build made to last for years.",
    "colourful": "Bright colourful design that stands out.",
    "scandinavian": "Scandinavian design with soft neutral tones.",
    "urban": "Urban style for city life.",
    "outdoor": "Ready for the outdoors and adventures.",
    "smart": "Smart features that make life easier.",
    "organic": "Organic ingredients and natural materials.",
    "ergonomic": "Ergonomic shape for all-day comfort.",
    "portable": "Portable and ready to go wherever you are.",
    "limited edition": "A limited edition run that will not come back.",
    "oversized": "Generous oversized fit.",
}

TOP_LEVEL_PHRASES: dict[str, str] = {
    "fashion": "Check the size guide before ordering.",
    "electronics": "Tested and fully working, with all original accessories.",
    "home": "Perfect to refresh your home.",
    "sports": "Made for training, trail and everything in between.",
    "toys": "Safe for children; follow the age recommendation on the box.",
    "media": "A great addition to any collection.",
    "beauty": "Dermatologically tested.",
    "garden": "Ideal for gardens, balconies and workshops.",
}

COLOURS: tuple[str, ...] = (
    "black", "white", "grey", "navy", "blue", "red", "green", "beige", "brown", "pink",
    "yellow", "orange", "purple", "silver", "gold",
)

APPAREL_SIZES: tuple[str, ...] = ("XS", "S", "M", "L", "XL", "XXL")
SHOE_SIZES: tuple[str, ...] = tuple(str(s) for s in range(35, 47))

# condition -> (share of listings, quality offset, price multiplier, text in descriptions)
CONDITIONS: dict[str, tuple[float, float, float, str]] = {
    "new": (0.45, 0.3, 1.0, "Brand new, never used."),
    "like_new": (0.2, 0.15, 0.8, "Like new, used only a few times."),
    "good": (0.25, -0.1, 0.6, "Good condition with light signs of use."),
    "fair": (0.1, -0.5, 0.4, "Fair condition; visible wear, fully functional."),
}

BRAND_PREFIXES: tuple[str, ...] = (
    "Nord", "Lum", "Vel", "Ard", "Sol", "Kai", "Bri", "Orr", "Tal", "Zen", "Mar", "Fen",
    "Alt", "Cor", "Dun", "Eko", "Gal", "Hal", "Isk", "Jun", "Kor", "Lin", "Mon", "Nov",
)
BRAND_SUFFIXES: tuple[str, ...] = (
    "vik", "ora", "ex", "ano", "ia", "ello", "sen", "tek", "wood", "line", "ar", "is",
)
BRAND_TIERS: dict[str, tuple[float, float, float]] = {
    # tier -> (share of brands, quality offset, log price premium)
    "budget": (0.35, -0.4, -0.45),
    "mid": (0.45, 0.0, 0.0),
    "premium": (0.2, 0.5, 0.55),
}

SELLER_FIRST: tuple[str, ...] = (
    "Nordic", "Urban", "Happy", "Golden", "Little", "Green", "Blue", "Old Town", "Sunny",
    "Atelier", "Second", "Corner", "Bright", "Maple", "Harbour", "Alpine", "River", "Velvet",
)
SELLER_SECOND: tuple[str, ...] = (
    "Finds", "Store", "Boutique", "Trading", "Goods", "Outlet", "Market", "Corner Shop",
    "Collective", "Supply", "Emporium", "Exchange", "Depot", "House", "Studio",
)

# code, name, latitude, longitude, share of buyers, first IPv4 octets used by the region's ISPs
REGIONS: tuple[tuple[str, str, float, float, float, tuple[int, ...]], ...] = (
    ("DE", "Germany", 51.2, 10.4, 0.22, (31, 46, 77, 84)),
    ("FR", "France", 46.6, 2.4, 0.17, (37, 78, 90, 92)),
    ("IT", "Italy", 42.8, 12.5, 0.14, (2, 79, 87, 93)),
    ("ES", "Spain", 40.4, -3.7, 0.12, (80, 83, 88, 95)),
    ("NL", "Netherlands", 52.1, 5.3, 0.08, (62, 81, 85, 145)),
    ("PL", "Poland", 52.0, 19.1, 0.09, (5, 31, 89, 178)),
    ("SE", "Sweden", 62.0, 15.0, 0.05, (78, 81, 83, 90)),
    ("AT", "Austria", 47.6, 14.1, 0.05, (62, 80, 91, 193)),
    ("BE", "Belgium", 50.6, 4.6, 0.05, (78, 81, 91, 109)),
    ("PT", "Portugal", 39.6, -8.0, 0.03, (2, 85, 89, 94)),
)

# carrier -> (base logit of arriving on time, extra promised days, share of shipments)
CARRIERS: dict[str, tuple[float, float, float]] = {
    "swiftpost": (2.2, 0.0, 0.3),
    "eurocargo": (1.6, 0.0, 0.25),
    "parcelnet": (1.2, -0.5, 0.2),
    "bluebox": (2.6, 1.0, 0.15),
    "northline": (0.9, 0.0, 0.1),
}

# segment -> (share, price sensitivity mean, sessions per day relative to the mean)
SEGMENTS: dict[str, tuple[float, float, float]] = {
    "bargain_hunter": (0.25, 1.6, 1.1),
    "mainstream": (0.45, 0.9, 0.9),
    "enthusiast": (0.2, 0.5, 1.5),
    "premium": (0.1, 0.1, 0.7),
}

DEVICE_TYPES: tuple[str, ...] = ("mobile_app", "mobile_web", "desktop", "tablet")

EMAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com", "outlook.com", "yahoo.com", "icloud.com", "gmx.de", "web.de", "orange.fr",
    "libero.it", "telefonica.es", "ziggo.nl", "wp.pl", "telia.se", "proton.me",
)
DISPOSABLE_EMAIL_DOMAINS: tuple[str, ...] = ("mailinator.com", "tempmail.dev", "throwaway.email")
