"""Regions mock data can be drawn from: recorded sales, places, streets and market history.

A region is only as realistic as its recorded sales, so each one names its sales file; the
homes, prices and places of the mock members are drawn from it.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from homes.demo_homes import sales_csv_path
from homes.valuation import Comparable, load_king_county_csv


@dataclass(frozen=True)
class Region:
    name: str
    state: str
    sales_file: Callable[[], Path]
    sales_as_of: dt.date  # when the recorded prices in the file were paid (mid-point)
    cities: dict[str, str]  # ZIP code -> city
    default_city: str
    # Home price index by year (mid-year, any scale): prices move along it between the
    # recorded sales, purchases long ago and today.
    price_index: dict[int, float]
    street_names: tuple[str, ...]
    numbered_prefixes: tuple[str, ...]  # "NE", "S"... for numbered streets

    def sales(self) -> list[Comparable]:
        return _load(str(self.sales_file()))

    def city(self, zipcode: str | None) -> str:
        return self.cities.get(zipcode or "", self.default_city)

    def index(self, day: dt.date) -> float:
        """The price index on a day: linear between the known mid-years, flat beyond them."""
        years = sorted(self.price_index)
        t = day.year + (day.timetuple().tm_yday - 1) / 365.25 - 0.5
        if t <= years[0]:
            return self.price_index[years[0]]
        if t >= years[-1]:
            return self.price_index[years[-1]]
        after = bisect.bisect_right(years, t)
        y0, y1 = years[after - 1], years[after]
        a, b = self.price_index[y0], self.price_index[y1]
        return a + (b - a) * (t - y0) / (y1 - y0)


@cache
def _load(path: str) -> list[Comparable]:
    return load_king_county_csv(path)


_KING_COUNTY_CITIES = {
    "98001": "Auburn", "98002": "Auburn", "98003": "Federal Way", "98004": "Bellevue",
    "98005": "Bellevue", "98006": "Bellevue", "98007": "Bellevue", "98008": "Bellevue",
    "98010": "Black Diamond", "98011": "Bothell", "98014": "Carnation", "98019": "Duvall",
    "98022": "Enumclaw", "98023": "Federal Way", "98024": "Fall City", "98027": "Issaquah",
    "98028": "Kenmore", "98029": "Issaquah", "98030": "Kent", "98031": "Kent", "98032": "Kent",
    "98033": "Kirkland", "98034": "Kirkland", "98038": "Maple Valley", "98039": "Medina",
    "98040": "Mercer Island", "98042": "Kent", "98045": "North Bend", "98052": "Redmond",
    "98053": "Redmond", "98055": "Renton", "98056": "Renton", "98058": "Renton",
    "98059": "Renton", "98065": "Snoqualmie", "98070": "Vashon", "98072": "Woodinville",
    "98074": "Sammamish", "98075": "Sammamish", "98077": "Woodinville", "98092": "Auburn",
    "98146": "Burien", "98148": "Burien", "98166": "Burien", "98168": "Tukwila",
    "98155": "Shoreline", "98177": "Shoreline", "98178": "Tukwila", "98188": "SeaTac",
    "98198": "Des Moines",
}  # fmt: skip

# Seattle-area repeat-sales home price index (approximate mid-year levels).
_SEATTLE_INDEX = {
    1985: 55, 1990: 80, 1995: 82, 2000: 118, 2001: 124, 2002: 128, 2003: 132,
    2004: 142, 2005: 163, 2006: 185, 2007: 192, 2008: 180, 2009: 156, 2010: 148,
    2011: 137, 2012: 137, 2013: 153, 2014: 165, 2015: 180, 2016: 201, 2017: 227,
    2018: 251, 2019: 254, 2020: 270, 2021: 318, 2022: 368, 2023: 350, 2024: 368,
    2025: 375, 2026: 380,
}  # fmt: skip
_KING_COUNTY_STREETS = (
    "Greenwood Ave N", "Aurora Ave N", "Rainier Ave S", "Lake City Way NE",
    "Beacon Ave S", "California Ave SW", "Fauntleroy Way SW", "Madison St",
    "Union St", "Pike St", "Pine St", "Cherry St", "Alder St", "Spruce St",
    "Juniper Ln", "Madrona Dr", "Cedar Way", "Hemlock Pl", "Lakeview Dr",
    "Hillcrest Rd", "Forest Ridge Dr", "Sunset Blvd", "Meadow Ln", "Orchard Way",
    "Olympic View Dr", "Cascade Ave", "Summit Ave", "Ravenna Ave NE",
    "Wallingford Ave N", "Dayton Ave N", "Holman Rd NW", "Military Rd S",
    "Issaquah-Hobart Rd", "Redmond Way", "Bellevue Way NE", "Northup Way",
    "Maple Valley Hwy", "Petrovitsky Rd", "Kent Kangley Rd", "Meridian Ave S",
)  # fmt: skip

REGIONS: dict[str, Region] = {
    "king-county-wa": Region(
        name="King County, Washington",
        state="WA",
        sales_file=sales_csv_path,
        sales_as_of=dt.date(2014, 11, 15),
        cities=_KING_COUNTY_CITIES,
        default_city="Seattle",
        price_index=_SEATTLE_INDEX,
        street_names=_KING_COUNTY_STREETS,
        numbered_prefixes=("NE", "NW", "SE", "SW", "N", "S"),
    ),
}

#: Average 30-year fixed mortgage rate by year (percent), for the rates of old loans.
MORTGAGE_RATES = {
    1985: 12.4, 1990: 10.1, 1995: 7.9, 2000: 8.1, 2001: 7.0, 2002: 6.5, 2003: 5.8, 2004: 5.8,
    2005: 5.9, 2006: 6.4, 2007: 6.3, 2008: 6.0, 2009: 5.0, 2010: 4.7, 2011: 4.5, 2012: 3.7,
    2013: 4.0, 2014: 4.2, 2015: 3.9, 2016: 3.7, 2017: 4.0, 2018: 4.5, 2019: 3.9, 2020: 3.1,
    2021: 3.0, 2022: 5.3, 2023: 6.8, 2024: 6.7, 2025: 6.6, 2026: 6.4,
}  # fmt: skip


def mortgage_rate(year: int) -> float:
    known = sorted(MORTGAGE_RATES)
    year = min(max(year, known[0]), known[-1])
    while year not in MORTGAGE_RATES:
        year -= 1
    return MORTGAGE_RATES[year]
