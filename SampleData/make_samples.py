#!/usr/bin/env python3
"""Writes the Datenwerk sample files (our own, invented data in real municipal formats).

- klima-musterstadt.csv: German-style CSV as municipal environment offices publish it:
  ISO-8859-1, ';' delimiter, decimal comma, CRLF, two preamble lines, a footer, local time
  (Europe/Berlin) spanning both DST changes of 2024, ETRS89/UTM32N (EPSG:25832) coordinates,
  '-999' as missing marker, one hour inside the spring gap and one text value (both quarantined).
- energie-api/page-N.json: a paged JSON API dump (items + links.next + meta), ISO 8601 times with
  offsets across the autumn change, energy in kWh and power in W, one item with a non-numeric value.

Deterministic: re-running produces identical bytes.
"""
import json, math, os, random
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(2024)

STATIONS = [
    # id, name (with umlauts: Latin-1 in the file), easting, northing (EPSG:25832)
    ("MS-01", "Münster Domplatz", 405_328.42, 5_757_524.87),
    ("MS-02", "Hafen Süd", 407_231.10, 5_756_012.55),
    ("MS-03", "Grüner Weg / Geist", 404_110.75, 5_754_890.03),
]

def de(x, digits=1):
    return f"{x:.{digits}f}".replace(".", ",")

def klima():
    lines = [
        "Umweltamt Musterstadt - Klimamessnetz, Stundenwerte (Ortszeit);;;;;;;;;",
        "Quelle: Stadt Musterstadt, Datenlizenz Deutschland - Namensnennung - Version 2.0;;;;;;;;;",
        "Station;Stationsname;Rechtswert;Hochwert;Datum;Uhrzeit;Lufttemperatur [°C];rel. Feuchte [%];Luftdruck [hPa];Wind [km/h]",
    ]
    for day in ("30.03.2024", "31.03.2024", "26.10.2024", "27.10.2024"):
        d, m, y = map(int, day.split("."))
        hours = list(range(24))
        if day == "31.03.2024":
            hours.remove(2)          # 02:00-02:59 does not exist on this day
        if day == "27.10.2024":
            hours.insert(3, 2)       # 02:00 appears twice (CEST, then CET)
        for sid, name, e, n in STATIONS:
            base = 6.0 if m == 3 else 11.0
            for i, h in enumerate(hours):
                t = base + 4 * math.sin((h - 9) / 24 * 2 * math.pi) + rng.uniform(-0.4, 0.4)
                rh = 70 + rng.uniform(-12, 12)
                p = 1013.0 + rng.uniform(-6, 6)
                wind = rng.uniform(2, 28)
                cells = [sid, name, de(e, 2), de(n, 2), day, f"{h:02d}:00", de(t), de(rh, 0), de(p), de(wind)]
                if sid == "MS-02" and day == "30.03.2024" and h == 5:
                    cells[6] = "-999"                     # missing marker: no temperature this hour
                if sid == "MS-03" and day == "26.10.2024" and h == 14:
                    cells[9] = "Störung"                  # text in a value column: quarantined
                lines.append(";".join(cells))
        if day == "31.03.2024":
            # A clock-change mistake: 02:30 local does not exist on 31.03.2024 (quarantined, reason names the gap).
            lines.append(";".join(["MS-01", STATIONS[0][1], de(STATIONS[0][2], 2), de(STATIONS[0][3], 2), day, "02:30", "3,9", "81", "1009,4", "7,2"]))
    lines.append("Ende der Datei;;;;;;;;;")
    data = ("\r\n".join(lines) + "\r\n").encode("iso-8859-1")
    with open(os.path.join(HERE, "klima-musterstadt.csv"), "wb") as f:
        f.write(data)

METERS = [
    ("UW-NORD", "Umspannwerk Nord", 51.9893, 7.6252),
    ("UW-HAFEN", "Umspannwerk Hafen", 51.9478, 7.6421),
    ("LADEPARK-1", "Ladepark Schlossplatz", 51.9636, 7.6132),
]

def energie():
    berlin_summer = timezone(timedelta(hours=2))
    berlin_winter = timezone(timedelta(hours=1))
    start = datetime(2024, 10, 26, 22, 0, tzinfo=timezone.utc)   # 00:00 CEST on 27.10.
    items = []
    for step in range(24):                                        # 6 hours in 15-minute steps
        t = start + timedelta(minutes=15 * step)
        local = t.astimezone(berlin_summer if t < datetime(2024, 10, 27, 1, 0, tzinfo=timezone.utc) else berlin_winter)
        for mid, name, lat, lon in METERS:
            kwh = round(rng.uniform(200, 900) if mid != "LADEPARK-1" else rng.uniform(5, 60), 3)
            watt = round(kwh * 4 * 1000, 1)
            item = {
                "messstelle": mid,
                "bezeichnung": name,
                "position": {"lat": lat, "lon": lon},
                "zeitpunkt": local.isoformat(),
                "energie_kwh": kwh,
                "leistung_w": watt,
            }
            if mid == "UW-HAFEN" and step == 9:
                item["energie_kwh"] = "n/a"                        # not a number: quarantined
            items.append(item)
    size = 25
    pages = [items[i:i + size] for i in range(0, len(items), size)]
    os.makedirs(os.path.join(HERE, "energie-api"), exist_ok=True)
    for n, page in enumerate(pages, start=1):
        doc = {
            "meta": {"seite": n, "seiten": len(pages), "gesamt": len(items), "einheit_energie": "kWh"},
            "items": page,
            "links": {"self": f"page-{n}.json", "next": f"page-{n + 1}.json" if n < len(pages) else None},
        }
        with open(os.path.join(HERE, "energie-api", f"page-{n}.json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.write("\n")

klima()
energie()
