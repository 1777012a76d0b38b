#!/usr/bin/env python3
"""The demo's task: capital cities, asked in eight phrasings; writes the distillation
prompts (training) and the held-out task file, disjoint, the same every run."""
import argparse
import json
import os
import random
import sys

# Countries and their capitals, each with its other spellings. Left out: countries whose
# capital is disputed or split (Bolivia, Israel, South Africa, Tanzania) and those whose
# capital's name is inside the country's (Luxembourg, Singapore, Tunisia, Djibouti...):
# "contains" would count any answer that repeats the question as right.
CAPITALS = [
    ("Afghanistan", "Kabul"), ("Albania", "Tirana"), ("Algeria", "Algiers"),
    ("Argentina", "Buenos Aires"), ("Armenia", "Yerevan"), ("Australia", "Canberra"),
    ("Austria", "Vienna"), ("Azerbaijan", "Baku"), ("Bangladesh", "Dhaka"),
    ("Belarus", "Minsk"), ("Belgium", "Brussels"), ("Brazil", "Brasilia", "Brasília"),
    ("Bulgaria", "Sofia"), ("Cambodia", "Phnom Penh"), ("Cameroon", "Yaounde", "Yaoundé"),
    ("Canada", "Ottawa"), ("Chile", "Santiago"), ("China", "Beijing"),
    ("Colombia", "Bogota", "Bogotá"), ("Croatia", "Zagreb"), ("Cuba", "Havana"),
    ("Cyprus", "Nicosia"), ("Denmark", "Copenhagen"), ("Ecuador", "Quito"),
    ("Egypt", "Cairo"), ("Estonia", "Tallinn"), ("Ethiopia", "Addis Ababa"),
    ("Finland", "Helsinki"), ("France", "Paris"), ("Georgia", "Tbilisi"),
    ("Germany", "Berlin"), ("Ghana", "Accra"), ("Greece", "Athens"),
    ("Guatemala", "Guatemala City"), ("Haiti", "Port-au-Prince"),
    ("Honduras", "Tegucigalpa"), ("Hungary", "Budapest"),
    ("Iceland", "Reykjavik", "Reykjavík"), ("India", "New Delhi"), ("Indonesia", "Jakarta"),
    ("Iran", "Tehran"), ("Iraq", "Baghdad"), ("Ireland", "Dublin"), ("Italy", "Rome"),
    ("Jamaica", "Kingston"), ("Japan", "Tokyo"), ("Jordan", "Amman"),
    ("Kazakhstan", "Astana", "Nur-Sultan"), ("Kenya", "Nairobi"), ("Kuwait", "Kuwait City"),
    ("Latvia", "Riga"), ("Lebanon", "Beirut"), ("Libya", "Tripoli"),
    ("Lithuania", "Vilnius"), ("Madagascar", "Antananarivo"), ("Malaysia", "Kuala Lumpur"),
    ("Mali", "Bamako"), ("Malta", "Valletta"), ("Mexico", "Mexico City"),
    ("Mongolia", "Ulaanbaatar", "Ulan Bator"), ("Morocco", "Rabat"), ("Mozambique", "Maputo"),
    ("Nepal", "Kathmandu"), ("Netherlands", "Amsterdam"), ("New Zealand", "Wellington"),
    ("Nicaragua", "Managua"), ("Niger", "Niamey"), ("Nigeria", "Abuja"),
    ("North Korea", "Pyongyang"), ("Norway", "Oslo"), ("Oman", "Muscat"),
    ("Pakistan", "Islamabad"), ("Panama", "Panama City"), ("Paraguay", "Asuncion", "Asunción"),
    ("Peru", "Lima"), ("Philippines", "Manila"), ("Poland", "Warsaw"),
    ("Portugal", "Lisbon"), ("Qatar", "Doha"), ("Romania", "Bucharest"),
    ("Russia", "Moscow"), ("Rwanda", "Kigali"), ("Saudi Arabia", "Riyadh"),
    ("Senegal", "Dakar"), ("Serbia", "Belgrade"), ("Slovakia", "Bratislava"),
    ("Slovenia", "Ljubljana"), ("Somalia", "Mogadishu"), ("South Korea", "Seoul"),
    ("Spain", "Madrid"), ("Sri Lanka", "Colombo"), ("Sudan", "Khartoum"),
    ("Sweden", "Stockholm"), ("Switzerland", "Bern"), ("Syria", "Damascus"),
    ("Taiwan", "Taipei"), ("Thailand", "Bangkok"), ("Turkey", "Ankara"),
    ("Uganda", "Kampala"), ("Ukraine", "Kyiv", "Kiev"), ("United Kingdom", "London"),
    ("United States", "Washington"), ("Uruguay", "Montevideo"),
    ("Uzbekistan", "Tashkent"), ("Venezuela", "Caracas"), ("Vietnam", "Hanoi"),
    ("Yemen", "Sanaa", "Sana'a"), ("Zambia", "Lusaka"), ("Zimbabwe", "Harare"),
]

PHRASINGS = [
    "What is the capital of {c}?",
    "Which city is the capital of {c}?",
    "What city is the capital of {c}?",
    "Name the capital of {c}.",
    "Tell me the capital of {c}.",
    "What is the capital city of {c}?",
    "Which city is {c}'s capital?",
    "Do you know the capital of {c}?",
]


def split(seed, n_train, n_heldout):
    """Per country, a seeded shuffle of the phrasings: the first n_train are training
    prompts, the next n_heldout held out; no (country, phrasing) is in both."""
    rng = random.Random(seed)
    train, heldout = [], []
    for country, *answers in CAPITALS:
        order = list(range(len(PHRASINGS)))
        rng.shuffle(order)
        for i, p in enumerate(order[:n_train + n_heldout]):
            row = (PHRASINGS[p].format(c=country), answers, country, p)
            (train if i < n_train else heldout).append(row)
    return train, heldout


def checkable():
    """Every answer must be absent from its own question, or "contains" passes an answer
    that merely repeats the question."""
    for country, *answers in CAPITALS:
        for a in answers:
            for p in PHRASINGS:
                if a.lower() in p.format(c=country).lower():
                    return f"{a!r} is inside the question {p.format(c=country)!r}"
    return None


def write(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--train", type=int, default=3, help="training phrasings per country")
    ap.add_argument("--heldout", type=int, default=2, help="held-out phrasings per country")
    a = ap.parse_args()
    if a.train < 1 or a.heldout < 1 or a.train + a.heldout > len(PHRASINGS):
        sys.exit(f"capitals.py: --train and --heldout must be at least 1 and add up to at "
                 f"most {len(PHRASINGS)}")
    bad = checkable()
    if bad:
        sys.exit(f"capitals.py: {bad}")
    train, heldout = split(a.seed, a.train, a.heldout)
    os.makedirs(a.outdir, exist_ok=True)
    # distill --prompts: the answer is what --check contains compares (one string: the
    # usual spelling; the task files accept every spelling).
    write(os.path.join(a.outdir, "train.prompts.jsonl"),
          [{"prompt": q, "answer": ans[0]} for q, ans, _, _ in train])
    # eval --task: the same chat rendering the student learns, answered greedily.
    for name, rows in (("train.task.jsonl", train), ("heldout.task.jsonl", heldout)):
        write(os.path.join(a.outdir, name),
              [{"messages": [{"role": "user", "content": q}], "answer": ans,
                "match": "contains", "id": f"{c}/{p}"} for q, ans, c, p in rows])
    print(f"{len(train)} training prompts, {len(heldout)} held-out, "
          f"{len(CAPITALS)} countries, in {a.outdir}")


if __name__ == "__main__":
    main()
