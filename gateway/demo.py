"""The demo district: a realistic, valid OneRoster 1.2.1 CSV bundle of any size, from a seed.

One district, N schools (elementary K-5, middle 6-8, high 9-12), a school year with two
semesters and four grading periods, a course per school, grade and subject with as many sections
as the enrolment needs, teachers (about one per 20 students), students with ~6 classes each,
some parents and guardians, roles, demographics for every student and a few user profiles.

Rows are streamed straight to the files: what stays in memory is the plan of each school (its
grades, courses and section counts), never the users or enrollments, so a million students take
the same memory as a thousand. Everything random comes from one ``random.Random(seed)`` drawn in
a fixed order, so the same arguments always give byte-identical files.

Column order always comes from :mod:`gateway.oneroster.csv.binding`; this module only says which
columns it fills.
"""
from __future__ import annotations

import csv
import datetime as dt
import math
import random
import unicodedata
from bisect import bisect
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from operator import itemgetter
from pathlib import Path
from typing import Callable, Sequence, TextIO

from gateway.errors import UsageError
from gateway.oneroster.csv import binding

DEFAULT_SCHOOLS = 6
DEFAULT_STUDENTS = 1000
DEFAULT_SEED = 1
# The school year is named by the calendar year it ends in (1.2 Rostering §4.2, schoolYear).
SCHOOL_YEAR = 2027

SYSTEM_NAME = "K-12 Gateway demo district generator"
SYSTEM_CODE = "gateway-demo"

ProgressCallback = Callable[[int], None]

# How often (in students) the progress callback is told about new work.
_PROGRESS_STEP = 1000
_STUDENTS_PER_TEACHER = 20
_ELEMENTARY_CLASS_SIZE = 24
_SECONDARY_CLASS_SIZE = 28


@dataclass(frozen=True)
class DemoBundle:
    """What :func:`generate_demo_bundle` wrote: the folder and the data rows in each file."""

    path: Path
    counts: dict[str, int]
    schools: int
    students: int
    seed: int

    @property
    def total_rows(self) -> int:
        """Data rows over all files (headers and the manifest not counted)."""
        return sum(self.counts.values())


# --------------------------------------------------------------------------------------------
# Names. Drawn independently of every demographic field, so no name implies a race or ethnicity.

_FEMALE = (
    "Olivia", "Emma", "Charlotte", "Amelia", "Sophia", "Mia", "Isabella", "Ava", "Evelyn",
    "Harper", "Luna", "Camila", "Sofía", "Valentina", "Ximena", "Guadalupe", "María", "Lucía",
    "Daniela", "Gabriela", "Aaliyah", "Imani", "Nia", "Zuri", "Amara", "Ayana", "Keisha",
    "Jasmine", "Destiny", "Aisha", "Fatima", "Maryam", "Noor", "Layla", "Zainab", "Amira",
    "Yasmin", "Leila", "Priya", "Ananya", "Aditi", "Diya", "Kavya", "Saanvi", "Isha", "Meera",
    "Mei", "Xiu", "Lian", "Yuna", "Hana", "Sakura", "Aiko", "Ji-woo", "Seo-yeon", "Min-ji",
    "Linh", "Mai", "Thuy", "Ngoc", "Chloe", "Grace", "Hannah", "Abigail", "Emily", "Madison",
    "Elizabeth", "Sarah", "Rachel", "Rebecca", "Naomi", "Leah", "Miriam", "Esther", "Ingrid",
    "Astrid", "Freya", "Siobhan", "Aoife", "Niamh", "Zoë", "Chiamaka", "Ngozi", "Adaeze",
    "Folake", "Yetunde", "Abeni", "Makena", "Wanjiru", "Tala", "Malia", "Leilani", "Kaiya",
    "Winona", "Aiyana", "Olga", "Natalia", "Anastasia", "Katarzyna", "Zofia", "Elif", "Zeynep",
    "Rania", "Salma", "Hina", "Ayesha", "Mariam", "Renée", "Chantal", "Amélie", "Giulia",
    "Francesca", "Beatriz", "Inês", "Thandiwe", "Nokuthula", "Esperanza", "Paloma", "Marisol",
)
_MALE = (
    "Liam", "Noah", "Oliver", "James", "Elijah", "William", "Henry", "Lucas", "Benjamin",
    "Theodore", "Mateo", "Santiago", "Diego", "José", "Luis", "Carlos", "Alejandro", "Miguel",
    "Juan", "Emiliano", "Jamal", "Malik", "Darnell", "DeShawn", "Jaylen", "Marcus", "Andre",
    "Terrence", "Kwame", "Kofi", "Chinedu", "Oluwaseun", "Emeka", "Tunde", "Tariq", "Omar",
    "Yusuf", "Ahmed", "Mohammed", "Hassan", "Karim", "Arjun", "Rohan", "Vikram", "Aarav",
    "Vihaan", "Rahul", "Sanjay", "Wei", "Jun", "Hao", "Haruto", "Ren", "Kenji", "Hiroshi",
    "Min-jun", "Seo-jun", "Ji-ho", "Minh", "Duc", "Huy", "Bao", "Ethan", "Michael", "Daniel",
    "David", "Samuel", "Joseph", "Jacob", "Nathan", "Isaac", "Aaron", "Eli", "Finn", "Declan",
    "Sean", "Cian", "Lars", "Søren", "Anders", "Mikhail", "Dmitri", "Ivan", "Pavel", "Tomasz",
    "Jakub", "Mehmet", "Emre", "Keanu", "Makoa", "Koa", "Ahanu", "Hemi", "Rafael", "João",
    "Pedro", "Gabriel", "François", "Étienne", "Luca", "Matteo", "Giovanni", "Sipho", "Thabo",
    "Tavita", "Sione", "Amit", "Farid", "Reza", "Dariush", "Andrés", "Joaquín", "Ignacio",
)
_NEUTRAL = (
    "Alex", "Jordan", "Taylor", "Riley", "Avery", "Quinn", "Rowan", "Sage", "River", "Skyler",
    "Emerson", "Finley", "Hayden", "Jesse", "Morgan", "Parker", "Reese", "Charlie", "Casey",
    "Jamie", "Kai", "Dakota", "Remy", "Ari", "Noa", "Sam", "Robin", "Eden", "Ash", "Shiloh",
    "Marley", "Phoenix", "Ariel", "Drew", "Blake", "Kendall", "Elliot", "Devon", "Sasha", "Anh",
    "Hikaru", "Yael", "Nour", "Tenzin", "Amani",
)
_FAMILY = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Pérez", "Thompson", "White", "Harris", "Sánchez",
    "Clark", "Ramírez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gómez", "Phillips", "Evans",
    "Turner", "Díaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris",
    "Morales", "Murphy", "Cook", "Rogers", "Gutiérrez", "Ortiz", "Morgan", "Cooper", "Peterson",
    "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson",
    "Brooks", "Chávez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price",
    "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jiménez",
    "Washington", "Jefferson", "Okafor", "Adeyemi", "Mensah", "Owusu", "Diallo", "Traoré",
    "Kamara", "Mwangi", "Otieno", "Haile", "Tesfaye", "Abdi", "Hussein", "Khan", "Ahmed",
    "Rahman", "Chowdhury", "Hossain", "Siddiqui", "Malik", "Haddad", "Khoury", "Nasser", "Saleh",
    "Yilmaz", "Demir", "Kaya", "Shah", "Singh", "Kaur", "Gupta", "Sharma", "Reddy", "Iyer",
    "Nair", "Menon", "Desai", "Joshi", "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang",
    "Zhao", "Wu", "Zhou", "Lin", "Xu", "Sun", "Ma", "Tanaka", "Sato", "Suzuki", "Takahashi",
    "Watanabe", "Yamamoto", "Nakamura", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Tran",
    "Le", "Pham", "Hoang", "Phan", "Vu", "Dang", "Bui", "Do", "Santos", "Dela Cruz", "Bautista",
    "Villanueva", "Aquino", "O'Brien", "O'Connor", "McCarthy", "Sullivan", "Fitzgerald",
    "Kowalski", "Nowak", "Wiśniewski", "Kowalczyk", "Ivanov", "Petrov", "Volkov", "Kuznetsov",
    "Schmidt", "Müller", "Schneider", "Fischer", "Weber", "Becker", "Rossi", "Russo", "Bianchi",
    "Romano", "Esposito", "Dubois", "Lefèvre", "Moreau", "Laurent", "Fernandes", "Silva",
    "Oliveira", "Costa", "Pereira", "Andersson", "Johansson", "Nielsen", "Hansen", "Larsen",
    "van der Berg", "de Jong", "Cohen", "Levi", "Friedman", "Goldberg", "Kahale", "Kealoha",
    "Akana", "Tsosie", "Begay", "Yazzie", "Benally", "Fonoti", "Tuilagi", "Fifita", "Ochoa",
    "Vargas", "Castro", "Romero", "Herrera", "Medina", "Aguilar", "Vega", "Delgado", "Salazar",
    "Guerrero", "Estrada", "Navarro", "Soto", "Contreras", "Sandoval", "Cabrera", "Figueroa",
    "Robles", "Ibarra", "Zamora", "Acosta", "Espinoza", "Cárdenas", "Núñez", "Jenkins", "Perry",
    "Powell", "Coleman", "Simmons", "Bryant", "Alexander", "Griffin", "Hayes", "Freeman",
    "Wallace", "Banks", "Greene", "Osei", "Boateng", "Nwosu", "Eze", "Abubakar", "Bello",
    "Said", "Farah", "Warsame", "Kiplagat", "Nakashima", "Ito", "Hayashi", "Lim", "Tan", "Ng",
    "Wong", "Chan", "Ho", "Dinh", "Ly", "Truong", "Karimi", "Hosseini", "Rezaei", "Sadeghi",
)
# Short forms some people go by (users.preferredGivenName).
_NICKNAMES = {
    "Alejandro": "Alex", "Elizabeth": "Liz", "William": "Will", "Benjamin": "Ben",
    "Theodore": "Teddy", "Samuel": "Sam", "Michael": "Mike", "Daniel": "Danny", "Joseph": "Joe",
    "Jacob": "Jake", "Nathan": "Nate", "Abigail": "Abby", "Rebecca": "Becca", "Natalia": "Talia",
    "Anastasia": "Stacy", "Francesca": "Frankie", "Katarzyna": "Kasia", "Valentina": "Vale",
    "Guadalupe": "Lupe", "Oluwaseun": "Seun", "Mohammed": "Mo", "Santiago": "Santi",
    "Emiliano": "Emi", "Gabriela": "Gabi", "Giovanni": "Gio", "Dmitri": "Dima",
    "Mikhail": "Misha", "Vikram": "Vik", "Chiamaka": "Amaka", "Esperanza": "Espe",
    "Ignacio": "Nacho", "Madison": "Maddie", "Isabella": "Bella", "Charlotte": "Charlie",
    "Alexander": "Xander", "Joaquín": "Quino", "Emily": "Em", "Jasmine": "Jaz",
}

# Sex (1.2 Rostering §5, sex vocabulary) with rough shares, and which given names go with it:
# gendered names mostly, some gender-neutral ones.
_SEXES = ("female", "male", "unspecified", "other")
_STUDENT_SEX_CUMULATIVE = (0.488, 0.978, 0.99, 1.0)
_TEACHER_SEX_CUMULATIVE = (0.74, 0.99, 0.995, 1.0)

_PRONOUNS = {"female": ("she/her", "she/they"), "male": ("he/him", "he/they"),
             "unspecified": ("they/them",), "other": ("they/them", "xe/xem", "ze/hir")}

_RACE_FLAGS = ("americanIndianOrAlaskaNative", "asian", "blackOrAfricanAmerican",
               "nativeHawaiianOrOtherPacificIslander", "white")
# (weight, races): roughly the shape of US public-school enrolment; an empty tuple is "not
# reported", and two races also set demographicRaceTwoOrMoreRaces.
_RACE_MIX = (
    (0.50, ("white",)), (0.16, ("blackOrAfricanAmerican",)), (0.055, ("asian",)),
    (0.012, ("americanIndianOrAlaskaNative",)), (0.005, ("nativeHawaiianOrOtherPacificIslander",)),
    (0.02, ("blackOrAfricanAmerican", "white")), (0.012, ("asian", "white")),
    (0.008, ("americanIndianOrAlaskaNative", "white")),
    (0.004, ("americanIndianOrAlaskaNative", "blackOrAfricanAmerican")),
    (0.004, ("asian", "nativeHawaiianOrOtherPacificIslander")), (0.22, ()),
)
_HISPANIC_SHARE = 0.28
_FOREIGN_BORN_SHARE = 0.08
_BIRTH_COUNTRIES = ("MX", "SV", "GT", "HN", "DO", "IN", "CN", "PH", "VN", "KR", "NG", "ET",
                    "SO", "UA", "CA", "BR", "PK", "AF", "CU", "HT")
_US_STATES = ("AL", "AZ", "CA", "CO", "FL", "GA", "IL", "MA", "MI", "MN", "NC", "NJ", "NY", "OH",
              "OR", "PA", "TX", "VA", "WA", "WI")
# CEDS "Public School Residence Status" codes, with cumulative shares.
_RESIDENCE_CODES = ("01652", "01653", "01654", "01656")
_RESIDENCE_CUMULATIVE = (0.86, 0.95, 0.99, 1.0)

# Fictional districts: name, mail domain, state, its towns, telephone area code, FIPS prefix of
# the NCES-style identifiers.
_DISTRICTS = (
    ("Cedar Valley Unified School District", "cedarvalley", "CA",
     ("Cedar Valley", "Oak Flats", "Mill Creek", "San Benito Springs"), "209", "06"),
    ("Prairie Ridge Public Schools", "prairieridge", "KS",
     ("Prairie Ridge", "Cottonwood", "Elm Bend", "Sutter Hill"), "785", "20"),
    ("Harbor Point School District", "harborpoint", "WA",
     ("Harbor Point", "Gull Island", "Fir Crest", "Salmon Bay"), "360", "53"),
    ("Mesa Alta Independent School District", "mesaalta", "TX",
     ("Mesa Alta", "Rio Claro", "Piedra Blanca", "Las Lomas"), "915", "48"),
    ("Lakeshore Community Schools", "lakeshore", "MI",
     ("Lakeshore", "Birch Harbor", "Dune Park", "North Bay"), "231", "26"),
    ("Blue Ridge County Public Schools", "blueridge", "VA",
     ("Blue Ridge", "Laurel Gap", "Stony Creek", "Piney Hollow"), "540", "51"),
)

_SCHOOL_NAMES = (
    "Lincoln", "Maple Grove", "Cedar Hills", "Sunnyside", "Riverside", "Oak Park", "Willow Creek",
    "Pine Ridge", "Lakeview", "Meadowbrook", "Harriet Tubman", "Frederick Douglass",
    "César Chávez", "Sojourner Truth", "Mary McLeod Bethune", "Dolores Huerta", "Sally Ride",
    "Ellen Ochoa", "Fred Korematsu", "Patsy Mink", "Maya Angelou", "Thurgood Marshall",
    "Ruby Bridges", "Wilma Mankiller", "Sequoyah", "Katherine Johnson", "Grace Hopper",
    "Jackie Robinson", "Roberto Clemente", "Sylvia Mendez", "Daniel Inouye", "Amelia Earhart",
    "John Muir", "Rachel Carson", "Eastwood", "Westview", "Northgate", "Southridge", "Hillcrest",
    "Fairview", "Brookside", "Highland", "Evergreen", "Aspen", "Sierra Vista", "Bayside",
    "Stonebridge", "Fox Hollow", "Red Oak", "Silver Lake", "Golden Valley", "Prospect",
    "Horizon", "Canyon View", "Mountain View", "Valley Oak", "Heritage", "Liberty", "Pioneer",
    "Discovery",
)
# Prefixes that keep school names unique once the list above has been used up.
_NAME_CYCLES = ("", "North ", "South ", "East ", "West ", "Upper ", "Lower ", "New ")


def _slug(name: str) -> str:
    """ASCII letters and digits of ``name``, lower-cased: "Zoë O'Brien" -> "zoeobrien"."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in plain.lower() if ch.isalnum())


@dataclass(frozen=True)
class _NamePool:
    """Names with their ASCII slugs, in parallel tuples so a draw is a single index."""

    names: tuple[str, ...]
    slugs: tuple[str, ...]

    @classmethod
    def of(cls, names: Sequence[str]) -> _NamePool:
        return cls(tuple(names), tuple(_slug(n) for n in names))


# Gendered names weighted three to one against the neutral ones by repeating them.
_GIVEN_POOLS = {
    "female": _NamePool.of(_FEMALE * 3 + _NEUTRAL),
    "male": _NamePool.of(_MALE * 3 + _NEUTRAL),
    "unspecified": _NamePool.of(_NEUTRAL + _FEMALE[:20] + _MALE[:20]),
    "other": _NamePool.of(_NEUTRAL),
}
_FAMILY_POOL = _NamePool.of(_FAMILY)


def _require_plain(*groups: Sequence[str]) -> None:
    """Fail on import if a name needs CSV quoting: the hot loop writes names unquoted."""
    for group in groups:
        for name in group:
            if any(ch in name for ch in ',"\r\n'):
                raise ValueError(f"name {name!r} needs CSV quoting")


_require_plain(_FEMALE, _MALE, _NEUTRAL, _FAMILY, tuple(_NICKNAMES.values()),
               *(pronouns for pronouns in _PRONOUNS.values()))


# --------------------------------------------------------------------------------------------
# The course catalogue. Subject codes have the shape of NCES SCED codes (two-digit subject area,
# three-digit course); they are illustrative, not checked against a SCED release.

@dataclass(frozen=True)
class _Offering:
    """A course a grade takes: short key (unique within a grade), titles and codes, term, room."""

    key: str
    title: str
    code: str
    subject: str = ""
    subject_code: str = ""
    term: str = "year"          # "year" (both semesters), "s1" or "s2"
    room: str | None = None     # None: the teacher's own room
    periods: int = 1            # 2 for double-period labs
    class_type: str = "scheduled"


# A slot is what one student takes once: a single course, or a choice between electives.
_Slot = tuple[_Offering, ...]

_ELEMENTARY_TEMPLATE: tuple[_Slot, ...] = (
    (_Offering("hr", "{label} Homeroom", "HR-{n}", class_type="homeroom"),),
    (_Offering("ela", "{label} English Language Arts", "ELA-{n}", "English Language Arts", "51028"),),
    (_Offering("math", "{label} Mathematics", "MATH-{n}", "Mathematics", "52038"),),
    (_Offering("sci", "{label} Science", "SCI-{n}", "Science", "53234"),),
    (_Offering("ss", "{label} Social Studies", "SS-{n}", "Social Studies", "54436"),),
    (_Offering("art", "{label} Art", "ART-{n}", "Visual Arts", "55185", room="Art Room"),
     _Offering("mus", "{label} Music", "MUS-{n}", "Music", "55110", room="Music Room"),
     _Offering("pe", "{label} Physical Education", "PE-{n}", "Physical Education", "58034",
               room="Gym")),
)

_MIDDLE_ELECTIVES: _Slot = (
    _Offering("art", "Art {n}", "ART{n}", "Visual Arts", "55184", room="Art Room"),
    _Offering("band", "Band {n}", "BAND{n}", "Music", "55107", room="Band Room"),
    _Offering("span", "Exploratory Spanish {n}", "SPX{n}", "World Languages", "56101"),
    _Offering("cs", "Computer Science Discoveries {n}", "CSD{n}", "Computer Science", "60005"),
)
_HIGH_ELECTIVES: _Slot = (
    _Offering("art", "Studio Art", "ART2D", "Visual Arts", "05154", room="Art Room"),
    _Offering("choir", "Concert Choir", "CHOIR", "Music", "05110", room="Music Room"),
    _Offering("cs", "Computer Science Principles", "CSP", "Computer Science", "10019"),
    _Offering("jour", "Journalism", "JOUR", "English Language Arts", "01104"),
)


def _middle(n: str, math_: _Offering, science: _Offering, social: _Offering) -> tuple[_Slot, ...]:
    return (
        (_Offering("ela", f"English Language Arts {n}", f"ELA{n}", "English Language Arts", "51036"),),
        (math_,), (science,), (social,),
        (_Offering("pe", f"Physical Education {n}", f"PE{n}", "Physical Education", "58034",
                   room="Gym"),),
        tuple(replace(o, title=o.title.format(n=n), code=o.code.format(n=n)) for o in _MIDDLE_ELECTIVES),
    )


_SECONDARY_CATALOGUE: dict[str, tuple[_Slot, ...]] = {
    "06": _middle("6", _Offering("math", "Mathematics 6", "MATH6", "Mathematics", "52036"),
                  _Offering("sci", "Earth Science", "ESCI6", "Science", "53003"),
                  _Offering("ss", "Ancient Civilizations", "SS6", "Social Studies", "54054")),
    "07": _middle("7", _Offering("math", "Mathematics 7", "MATH7", "Mathematics", "52037"),
                  _Offering("sci", "Life Science", "LSCI7", "Science", "53051"),
                  _Offering("ss", "World History 7", "SS7", "Social Studies", "54051")),
    "08": _middle("8", _Offering("math", "Pre-Algebra", "PREALG", "Mathematics", "52051"),
                  _Offering("sci", "Physical Science", "PSCI8", "Science", "53151"),
                  _Offering("ss", "U.S. History 8", "SS8", "Social Studies", "54101")),
    "09": (
        (_Offering("eng", "English 9", "ENG9", "English Language Arts", "01001"),),
        (_Offering("alg1", "Algebra I", "ALG1", "Mathematics", "02052"),),
        (_Offering("bio", "Biology", "BIO", "Science", "03051", periods=2),),
        (_Offering("whist", "World History", "WHIST", "Social Studies", "04051"),),
        (_Offering("span1", "Spanish I", "SPAN1", "World Languages", "06101"),
         _Offering("fren1", "French I", "FREN1", "World Languages", "06201")),
        (_Offering("pe", "Physical Education", "PE9", "Physical Education", "08001", term="s1",
                   room="Gym"),),
        (_Offering("health", "Health", "HLTH", "Health Education", "08051", term="s2"),),
    ),
    "10": (
        (_Offering("eng", "English 10", "ENG10", "English Language Arts", "01002"),),
        (_Offering("geo", "Geometry", "GEOM", "Mathematics", "02072"),),
        (_Offering("chem", "Chemistry", "CHEM", "Science", "03101", periods=2),),
        (_Offering("wgeo", "World Geography", "WGEO", "Social Studies", "04001"),),
        (_Offering("span2", "Spanish II", "SPAN2", "World Languages", "06102"),
         _Offering("fren2", "French II", "FREN2", "World Languages", "06202")),
        (_Offering("pe", "Physical Education", "PE10", "Physical Education", "08001", room="Gym"),),
    ),
    "11": (
        (_Offering("eng", "English 11", "ENG11", "English Language Arts", "01003"),),
        (_Offering("alg2", "Algebra II", "ALG2", "Mathematics", "02056"),),
        (_Offering("phys", "Physics", "PHYS", "Science", "03151", periods=2),),
        (_Offering("ushist", "U.S. History", "USHIST", "Social Studies", "04101"),),
        (_Offering("span3", "Spanish III", "SPAN3", "World Languages", "06103"),
         _Offering("fren3", "French III", "FREN3", "World Languages", "06203")),
        _HIGH_ELECTIVES,
    ),
    "12": (
        (_Offering("eng", "English 12", "ENG12", "English Language Arts", "01004"),),
        (_Offering("precalc", "Precalculus", "PRECALC", "Mathematics", "02110"),
         _Offering("stats", "Statistics", "STATS", "Mathematics", "02203")),
        (_Offering("envsci", "Environmental Science", "ENVSCI", "Science", "03003"),
         _Offering("anat", "Anatomy and Physiology", "ANAT", "Science", "03056")),
        (_Offering("gov", "U.S. Government", "GOV", "Social Studies", "04151", term="s1"),),
        (_Offering("econ", "Economics", "ECON", "Social Studies", "04201", term="s2"),),
        _HIGH_ELECTIVES,
    ),
}

ELEMENTARY_GRADES = ("KG", "01", "02", "03", "04", "05")
MIDDLE_GRADES = ("06", "07", "08")
HIGH_GRADES = ("09", "10", "11", "12")
ALL_GRADES = ELEMENTARY_GRADES + MIDDLE_GRADES + HIGH_GRADES


def _catalogue(grade: str) -> tuple[_Slot, ...]:
    """The slots a student of ``grade`` fills: one class from each."""
    if grade in _SECONDARY_CATALOGUE:
        return _SECONDARY_CATALOGUE[grade]
    label = "Kindergarten" if grade == "KG" else f"Grade {int(grade)}"
    n = "K" if grade == "KG" else str(int(grade))
    return tuple(tuple(replace(o, title=o.title.format(label=label), code=o.code.format(n=n))
                       for o in slot) for slot in _ELEMENTARY_TEMPLATE)


# --------------------------------------------------------------------------------------------
# The calendar.

@dataclass(frozen=True)
class _Session:
    sourced_id: str
    title: str
    type: str
    start: str
    end: str
    parent: str = ""


def _sessions(year: int) -> tuple[_Session, ...]:
    """The school year ending in ``year``: the year, two semesters, four grading periods."""
    first, last = year - 1, year
    ys = f"sy-{year}"
    s1, s2 = f"sem-{year}-1", f"sem-{year}-2"
    return (
        _Session(ys, f"{first}-{last}", "schoolYear", f"{first}-08-17", f"{last}-06-04"),
        _Session(s1, f"Fall Semester {first}", "semester", f"{first}-08-17", f"{last}-01-15", ys),
        _Session(s2, f"Spring Semester {last}", "semester", f"{last}-01-19", f"{last}-06-04", ys),
        _Session(f"gp-{year}-1", f"Quarter 1 {first}-{last}", "gradingPeriod",
                 f"{first}-08-17", f"{first}-10-23", s1),
        _Session(f"gp-{year}-2", f"Quarter 2 {first}-{last}", "gradingPeriod",
                 f"{first}-10-26", f"{last}-01-15", s1),
        _Session(f"gp-{year}-3", f"Quarter 3 {first}-{last}", "gradingPeriod",
                 f"{last}-01-19", f"{last}-03-26", s2),
        _Session(f"gp-{year}-4", f"Quarter 4 {first}-{last}", "gradingPeriod",
                 f"{last}-03-29", f"{last}-06-04", s2),
    )


# --------------------------------------------------------------------------------------------
# The plan: everything decided per school before a single user is written. Small: a few records
# per course, whatever the number of students.

@dataclass
class _CoursePlan:
    """One course at one school, and how its sections are laid out."""

    offering: _Offering
    course_id: str
    class_prefix: str
    students: int
    sections: int
    mix: int                     # scatters students over sections differently per course
    term_ids: str
    begin: str
    end: str


@dataclass
class _GradePlan:
    grade: str
    students: int
    slots: list[list[_CoursePlan]] = field(default_factory=list)


@dataclass
class _SchoolPlan:
    number: int
    sourced_id: str
    name: str
    identifier: str
    grades: list[_GradePlan]
    teachers: int = 0
    first_teacher: int = 0       # global index of this school's first teacher

    @property
    def students(self) -> int:
        return sum(g.students for g in self.grades)


@dataclass
class _DistrictPlan:
    name: str
    domain: str
    state: str
    towns: tuple[str, ...]
    area_code: str
    sourced_id: str
    identifier: str
    schools: list[_SchoolPlan]
    sessions: tuple[_Session, ...]


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` into integers that add up exactly (largest
    remainder; ties go to the earlier share, so the split is deterministic)."""
    scale = sum(weights)
    exact = [total * w / scale for w in weights]
    shares = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _school_kinds(schools: int) -> list[tuple[str, tuple[str, ...]]]:
    """The kind and grades of each school, so that any number of schools covers KG to 12."""
    if schools == 1:
        return [("K-12 School", ALL_GRADES)]
    if schools == 2:
        return [("Elementary School", ELEMENTARY_GRADES),
                ("Junior/Senior High School", MIDDLE_GRADES + HIGH_GRADES)]
    high = max(1, round(schools * 0.2))
    middle = max(1, round(schools * 0.25))
    elementary = schools - high - middle
    return ([("Elementary School", ELEMENTARY_GRADES)] * elementary
            + [("Middle School", MIDDLE_GRADES)] * middle
            + [("High School", HIGH_GRADES)] * high)


def _plan(rng: random.Random, schools: int, students: int, year: int,
          district_sourced_id: str = "district-1") -> _DistrictPlan:
    name, domain, state, towns, area_code, fips = rng.choice(_DISTRICTS)
    lea = f"{fips}{rng.randrange(10_000, 100_000)}"
    sessions = _sessions(year)
    fall, spring = sessions[1], sessions[2]
    # Per course term: (termSourcedIds, first day, last day).
    terms = {"year": (f"{fall.sourced_id},{spring.sourced_id}", fall.start, spring.end),
             "s1": (fall.sourced_id, fall.start, fall.end),
             "s2": (spring.sourced_id, spring.start, spring.end)}

    kinds = _school_kinds(schools)
    names = list(_SCHOOL_NAMES)
    rng.shuffle(names)
    width = max(2, len(str(schools)))
    plans = []
    for index, (kind, grades) in enumerate(kinds):
        base = _NAME_CYCLES[index // len(names) % len(_NAME_CYCLES)] + names[index % len(names)]
        if index >= len(names) * len(_NAME_CYCLES):
            base += f" {index // (len(names) * len(_NAME_CYCLES)) + 1}"
        number = index + 1
        plans.append(_SchoolPlan(number, f"school-{number:0{width}d}", f"{base} {kind}",
                                 f"{lea}{number:05d}", [_GradePlan(g, 0) for g in grades]))

    # Every grade gets the same share of students; within a grade, schools differ in size.
    school_weights = [rng.uniform(0.75, 1.25) for _ in plans]
    for grade, grade_total in zip(ALL_GRADES, _apportion(students, [1.0] * len(ALL_GRADES))):
        serving = [(s, gp) for s in plans for gp in s.grades if gp.grade == grade]
        shares = _apportion(grade_total, [school_weights[s.number - 1] for s, _ in serving])
        for (_, grade_plan), share in zip(serving, shares):
            grade_plan.students = share

    teacher = 0
    for school in plans:
        school.teachers = max(1, round(school.students / _STUDENTS_PER_TEACHER))
        school.first_teacher = teacher
        teacher += school.teachers
        for grade_plan in school.grades:
            elementary = grade_plan.grade in ELEMENTARY_GRADES
            size = _ELEMENTARY_CLASS_SIZE if elementary else _SECONDARY_CLASS_SIZE
            for slot_index, slot in enumerate(_catalogue(grade_plan.grade)):
                courses = []
                for option, offering in enumerate(slot):
                    count = _choosers(grade_plan.students, len(slot), option, slot_index + 1)
                    sections = max(1, math.ceil(count / size))
                    stem = f"{school.sourced_id[len('school-'):]}-{grade_plan.grade}-{offering.key}"
                    term_ids, begin, end = terms[offering.term]
                    courses.append(_CoursePlan(offering, f"course-{stem}", f"class-{stem}-", count,
                                               sections, rng.randrange(sections), term_ids, begin, end))
                grade_plan.slots.append(courses)
    return _DistrictPlan(name, f"{domain}.example", state, towns, area_code, district_sourced_id, lea,
                         plans, sessions)


# A slot with L options: student i of a grade takes option (i + shift * (i // L)) % L, the shift
# depending on the slot so that electives of different slots are not always paired the same way.
# Every block of L consecutive students takes each option exactly once, so how many students take
# an option, and a student's rank among them (i // L), follow from arithmetic, without any state.

def _option(i: int, options: int, shift: int) -> int:
    """The option student ``i`` of a grade takes in a slot with ``options`` options."""
    return (i + shift * (i // options)) % options


def _choosers(students: int, options: int, option: int, shift: int) -> int:
    """How many of a grade's ``students`` take ``option`` (the count :func:`_option` implies)."""
    full, rest = divmod(students, options)
    return full + (1 if (option - shift * full) % options < rest else 0)


# --------------------------------------------------------------------------------------------
# Writing.

_BLANK = ("",)


def _quote(value: str) -> str:
    """One field as RFC 4180 wants it: quoted when it holds a comma or a quote."""
    if "\n" in value or "\r" in value:
        # The binding allows no line breaks inside fields (1.2.1 CSV binding).
        raise ValueError(f"line break in CSV value {value!r}")
    if "," in value or '"' in value:
        return '"' + value.replace('"', '""') + '"'
    return value


class _FileWriter:
    """One bundle file: writes the binding's header, then rows given in this module's own field
    order, placing each value under its column and leaving the others blank.

    Rows are joined by hand rather than with ``csv.writer``, which costs several times more per
    row and dominates a million-student run. A row whose joined line has exactly one comma per
    column boundary and no quote needs no quoting; any other row is quoted field by field, so the
    output is the RFC 4180 text ``csv.writer`` would produce. Lines collect in memory until
    :meth:`flush` (the generator flushes every few thousand rows) and once more on close.
    """

    def __init__(self, stack: ExitStack, directory: Path, csv_file: binding.CsvFile,
                 fields: Sequence[str]) -> None:
        unknown = [name for name in fields if name not in csv_file.header]
        if unknown:
            raise ValueError(f"{csv_file.filename} has no column {', '.join(unknown)}")
        position = {name: i for i, name in enumerate(fields)}
        self._order = itemgetter(*(position.get(name, len(fields)) for name in csv_file.header))
        self._commas = len(csv_file.header) - 1
        self._header = csv_file.header
        self.filename = csv_file.filename
        self.name = csv_file.name
        self.rows = 0
        self._stream: TextIO = stack.enter_context(
            open(directory / csv_file.filename, "w", encoding="utf-8", newline="", buffering=1 << 20))
        self._stream.write(",".join(map(_quote, csv_file.header)) + "\r\n")
        self._pending: list[str] = []
        # Appends lines built from :meth:`template` pieces; bound once for hot loops.
        self.add_line = self._pending.append
        stack.callback(self.flush)  # runs before the file is closed

    def _line(self, values: tuple[str, ...]) -> str:
        row = self._order(values + _BLANK)
        line = ",".join(row)
        if line.count(",") != self._commas or '"' in line or "\n" in line or "\r" in line:
            if "\n" in line or "\r" in line:
                # The binding allows no line breaks inside fields (1.2.1 CSV binding).
                raise ValueError(f"line break in a {self.filename} row: {row!r}")
            line = ",".join([('"' + v.replace('"', '""') + '"') if ("," in v or '"' in v) else v
                             for v in row])
        return line + "\r\n"

    def write(self, values: tuple[str, ...]) -> None:
        """Add one row given in this writer's field order."""
        self._pending.append(self._line(values))

    def template(self, constants: dict[str, str], variables: tuple[str, ...]) -> tuple[str, ...]:
        """The pieces of a line whose ``constants`` are fixed: ``len(variables) + 1`` strings to
        interleave with the variables' values (which must need no quoting), for hot loops that
        write many rows differing only in a few ids.

        ``variables`` must be given in the file's column order, so a change of column order in
        the binding fails here rather than shifting values silently.
        """
        names = self._header
        slots = [names.index(v) for v in variables]
        if slots != sorted(slots):
            raise ValueError(f"template variables {variables} are not in the column order "
                             f"of {self.filename}")
        unknown = set(constants) - set(names)
        if unknown:
            raise ValueError(f"{self.filename} has no column {', '.join(sorted(unknown))}")
        # Join the whole line with a marker where each variable goes, then cut at the markers.
        cells = ["\0" if name in variables else _quote(constants.get(name, "")) for name in names]
        return tuple((",".join(cells) + "\r\n").split("\0"))

    def flush(self) -> None:
        """Write out the lines collected so far."""
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            # No value holds a line break (checked above), so lines are rows.
            self.rows += text.count("\n")
            self._stream.write(text)


def generate_demo_bundle(out_dir: Path | str, *, schools: int = DEFAULT_SCHOOLS,
                         students: int = DEFAULT_STUDENTS, seed: int = DEFAULT_SEED,
                         progress: ProgressCallback | None = None,
                         district_sourced_id: str = "district-1") -> DemoBundle:
    """Write a demo district of ``schools`` schools and ``students`` students into ``out_dir``
    as a OneRoster 1.2.1 CSV bundle (bulk), deterministically for ``seed``.

    ``progress`` is called with the number of students written since its previous call.
    ``district_sourced_id`` names the district's org, so that several demo districts, each from
    its own seed, can share one store (the scale benchmark imports ten).
    The folder is created if needed; bundle files already in it are replaced.
    """
    if schools < 1:
        raise UsageError(f"the number of schools must be at least 1, not {schools}")
    if students < 1:
        raise UsageError(f"the number of students must be at least 1, not {students}")
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    # The manifest is written last, so a run that stops half-way leaves no bundle that looks whole.
    (directory / binding.MANIFEST).unlink(missing_ok=True)
    rng = random.Random(seed)
    plan = _plan(rng, schools, students, SCHOOL_YEAR, district_sourced_id)

    with ExitStack() as stack:
        def open_file(csv_file: binding.CsvFile, *fields: str) -> _FileWriter:
            return _FileWriter(stack, directory, csv_file, fields)

        files = _Files(
            orgs=open_file(binding.ORGS, "sourcedId", "name", "type", "identifier", "parentSourcedId"),
            sessions=open_file(binding.ACADEMIC_SESSIONS, "sourcedId", "title", "type", "startDate",
                               "endDate", "parentSourcedId", "schoolYear"),
            courses=open_file(binding.COURSES, "sourcedId", "schoolYearSourcedId", "title",
                              "courseCode", "grades", "orgSourcedId", "subjects", "subjectCodes"),
            classes=open_file(binding.CLASSES, "sourcedId", "title", "grades", "courseSourcedId",
                              "classCode", "classType", "location", "schoolSourcedId",
                              "termSourcedIds", "subjects", "subjectCodes", "periods"),
            users=open_file(binding.USERS, "sourcedId", "enabledUser", "username", "userIds",
                            "givenName", "familyName", "middleName", "identifier", "email", "sms",
                            "phone", "agentSourcedIds", "grades", "userMasterIdentifier",
                            "preferredGivenName", "primaryOrgSourcedId", "pronouns"),
            profiles=open_file(binding.USER_PROFILES, "sourcedId", "userSourcedId", "profileType",
                               "vendorId", "applicationId", "description", "credentialType",
                               "username"),
            roles=open_file(binding.ROLES, "sourcedId", "userSourcedId", "roleType", "role",
                            "beginDate", "endDate", "orgSourcedId", "userProfileSourcedId"),
            enrollments=open_file(binding.ENROLLMENTS, "sourcedId", "classSourcedId",
                                  "schoolSourcedId", "userSourcedId", "role", "primary",
                                  "beginDate", "endDate"),
            demographics=open_file(binding.DEMOGRAPHICS, "sourcedId", "birthDate", "sex",
                                   *_RACE_FLAGS, "demographicRaceTwoOrMoreRaces",
                                   "hispanicOrLatinoEthnicity", "countryOfBirthCode",
                                   "stateOfBirthAbbreviation", "cityOfBirth",
                                   "publicSchoolResidenceStatus"),
        )
        generator = _Generator(rng, plan, files, students, progress)
        generator.write_orgs_and_sessions()
        generator.write_courses_and_classes()
        generator.write_people()
    by_name = {writer.name: writer.rows for writer in files.all()}

    counts = {f.filename: by_name[f.name] for f in binding.ROSTERING_FILES}
    _write_manifest(directory, by_name)
    return DemoBundle(directory, counts, schools, students, seed)


def _write_manifest(directory: Path, rows_by_name: dict[str, int]) -> None:
    """manifest.csv (1.2.1 CSV §2.1): every file the binding names, bulk or absent."""
    rows = [("manifest.version", binding.MANIFEST_VERSION),
            ("oneroster.version", binding.ONEROSTER_VERSION)]
    for name in binding.ALL_FILE_NAMES:
        present = rows_by_name.get(name, 0) > 0
        rows.append((f"file.{name}", "bulk" if present else "absent"))
        if not present:
            # An absent file must not be left over from an earlier bundle in the same folder.
            (directory / f"{name}.csv").unlink(missing_ok=True)
    rows += [("source.systemName", SYSTEM_NAME), ("source.systemCode", SYSTEM_CODE)]
    with open(directory / binding.MANIFEST, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\r\n")
        writer.writerow(binding.MANIFEST_HEADER)
        writer.writerows(rows)


@dataclass
class _Files:
    orgs: _FileWriter
    sessions: _FileWriter
    courses: _FileWriter
    classes: _FileWriter
    users: _FileWriter
    profiles: _FileWriter
    roles: _FileWriter
    enrollments: _FileWriter
    demographics: _FileWriter

    def all(self) -> tuple[_FileWriter, ...]:
        return (self.orgs, self.sessions, self.courses, self.classes, self.users, self.profiles,
                self.roles, self.enrollments, self.demographics)

    def flush(self) -> None:
        """Write out what every file has collected, keeping memory flat."""
        for writer in self.all():
            writer.flush()


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return [x / total for x in out]


_RACE_CUMULATIVE = _cumulative([w for w, _ in _RACE_MIX])
# Each race combination as its six demographics values, ready to splice into a row.
_RACE_VALUES = tuple(
    tuple("true" if flag in races else "false" for flag in _RACE_FLAGS)
    + ("true" if len(races) > 1 else "false",)
    for _, races in _RACE_MIX)


class _Generator:
    """Writes the rows of one bundle from its plan, drawing from one random stream in order."""

    def __init__(self, rng: random.Random, plan: _DistrictPlan, files: _Files, students: int,
                 progress: ProgressCallback | None) -> None:
        self.rng = rng
        self.plan = plan
        self.files = files
        self.progress = progress
        self.enrollment_number = 0
        self.student_width = max(4, len(str(students)))
        self.year = plan.sessions[0]
        total_teachers = sum(s.teachers for s in plan.schools)
        self.teacher_width = max(3, len(str(total_teachers)))

    # -- organisation and calendar ------------------------------------------------------------

    def write_orgs_and_sessions(self) -> None:
        """The district, its schools, and the school year's sessions."""
        plan = self.plan
        orgs = self.files.orgs
        orgs.write((plan.sourced_id, plan.name, "district", plan.identifier, ""))
        for school in plan.schools:
            orgs.write((school.sourced_id, school.name, "school", school.identifier, plan.sourced_id))
        school_year = self.year.end[:4]
        for s in plan.sessions:
            self.files.sessions.write((s.sourced_id, s.title, s.type, s.start, s.end, s.parent,
                                       school_year))

    def teacher_id(self, index: int) -> str:
        """The sourcedId of the district's ``index``-th teacher (counting from 0)."""
        return f"tch-{index + 1:0{self.teacher_width}d}"

    def next_enrollment_id(self) -> str:
        """A fresh enrollment sourcedId."""
        self.enrollment_number += 1
        return f"enr-{self.enrollment_number}"

    # -- courses, classes and the teachers' enrollments ---------------------------------------

    def write_courses_and_classes(self) -> None:
        """Every course, its sections, and each section's teachers (one primary, sometimes a
        co-teacher). Sections are dealt to a school's teachers in order, so a teacher keeps to a
        few neighbouring courses, the way a department works."""
        rng = self.rng
        files = self.files
        year_id = self.year.sourced_id
        for school in self.plan.schools:
            courses = [c for g in school.grades for slot in g.slots for c in slot]
            total_sections = sum(c.sections for c in courses)
            dealt = 0
            for grade_plan in school.grades:
                elementary = grade_plan.grade in ELEMENTARY_GRADES
                for slot_index, slot in enumerate(grade_plan.slots):
                    for course in slot:
                        o = course.offering
                        files.courses.write((course.course_id, year_id, o.title, o.code,
                                             grade_plan.grade, school.sourced_id, o.subject,
                                             o.subject_code))
                        for section in range(course.sections):
                            teacher = dealt * school.teachers // total_sections
                            dealt += 1
                            class_id = f"{course.class_prefix}{section + 1}"
                            if elementary:
                                periods = str(slot_index + 1)
                            elif o.periods == 2:
                                first = (slot_index + section) % 6 + 1
                                periods = f"{first},{first + 1}"
                            else:
                                periods = str((slot_index + section) % 7 + 1)
                            room = o.room or f"Room {101 + teacher}"
                            files.classes.write((class_id, f"{o.title} - Section {section + 1}",
                                                 grade_plan.grade, course.course_id,
                                                 f"{o.code}-{section + 1:02d}", o.class_type, room,
                                                 school.sourced_id, course.term_ids, o.subject,
                                                 o.subject_code, periods))
                            rows = [(self.next_enrollment_id(), class_id, school.sourced_id,
                                     self.teacher_id(school.first_teacher + teacher), "teacher",
                                     "true", course.begin, course.end)]
                            if school.teachers > 1 and rng.random() < 0.05:
                                other = teacher + 1 + rng.randrange(school.teachers - 1)
                                other %= school.teachers
                                rows.append((self.next_enrollment_id(), class_id, school.sourced_id,
                                             self.teacher_id(school.first_teacher + other), "teacher",
                                             "false", course.begin, course.end))
                            for row in rows:
                                files.enrollments.write(row)
            files.flush()

    # -- people -------------------------------------------------------------------------------

    def _person(self, sex_cumulative: tuple[float, ...]) -> tuple[str, str, str, str, str, str]:
        """A sex and a name: (sex, given, given slug, middle, family, family slug)."""
        rng = self.rng
        sex = _SEXES[bisect(sex_cumulative, rng.random())]
        pool = _GIVEN_POOLS[sex]
        i = int(rng.random() * len(pool.names))
        middle = pool.names[int(rng.random() * len(pool.names))] if rng.random() < 0.6 else ""
        if middle == pool.names[i]:
            middle = ""
        j = int(rng.random() * len(_FAMILY_POOL.names))
        family, family_slug = _FAMILY_POOL.names[j], _FAMILY_POOL.slugs[j]
        if rng.random() < 0.03:
            k = int(rng.random() * len(_FAMILY_POOL.names))
            if k != j:
                family = f"{family}-{_FAMILY_POOL.names[k]}"
                family_slug += _FAMILY_POOL.slugs[k]
        return sex, pool.names[i], pool.slugs[i], middle, family, family_slug

    def _preferred(self, given: str, sex: str, pronoun_share: float) -> tuple[str, str]:
        """Sometimes a preferred given name and pronouns."""
        rng = self.rng
        preferred = ""
        nickname = _NICKNAMES.get(given)
        if nickname is not None and rng.random() < 0.4:
            preferred = nickname
        pronouns = ""
        if rng.random() < pronoun_share:
            choices = _PRONOUNS[sex]
            pronouns = choices[int(rng.random() * len(choices))]
        return preferred, pronouns

    def write_people(self) -> None:
        """Administrators, then school by school: principal, teachers, students and their
        parents or guardians, with roles, enrollments, demographics and some profiles."""
        plan = self.plan
        files = self.files
        year = self.year
        domain = plan.domain
        for number in (1, 2):
            sex, given, gslug, middle, family, fslug = self._person(_TEACHER_SEX_CUMULATIVE)
            uid = f"adm-{number}"
            username = f"{gslug}.{fslug}"
            files.users.write((uid, "true", username, f"{{SIS:A{number:04d}}}", given, family,
                               middle, f"A{number:04d}", f"{username}@{domain}", "", "", "", "",
                               "", "", plan.sourced_id, ""))
            files.roles.write((f"role-{uid}", uid, "primary", "districtAdministrator", year.start,
                               year.end, plan.sourced_id, ""))
        for school in plan.schools:
            self._write_staff(school)
            files.flush()
        student_number = 0
        parent_number = [0]
        for school in plan.schools:
            for grade_plan in school.grades:
                self._write_students(school, grade_plan, student_number, parent_number)
                student_number += grade_plan.students
        # The hot loop reports whole steps; the rest comes last.
        if self.progress is not None and student_number % _PROGRESS_STEP:
            self.progress(student_number % _PROGRESS_STEP)

    def _write_staff(self, school: _SchoolPlan) -> None:
        rng = self.rng
        files = self.files
        year = self.year
        domain = self.plan.domain
        sex, given, gslug, middle, family, fslug = self._person(_TEACHER_SEX_CUMULATIVE)
        uid = f"prn-{school.number}"
        username = f"{gslug}.{fslug}.p{school.number}"
        files.users.write((uid, "true", username, f"{{SIS:P{school.number:04d}}}", given, family,
                           middle, f"P{school.number:04d}", f"{username}@{domain}", "", "", "",
                           "", "", "", school.sourced_id, ""))
        files.roles.write((f"role-{uid}", uid, "primary", "principal", year.start, year.end,
                           school.sourced_id, ""))
        for local in range(school.teachers):
            index = school.first_teacher + local
            uid = self.teacher_id(index)
            sex, given, gslug, middle, family, fslug = self._person(_TEACHER_SEX_CUMULATIVE)
            preferred, pronouns = self._preferred(given, sex, 0.06)
            employee = f"T{index + 1:06d}"
            username = f"{gslug}.{fslug}{index + 1}"
            files.users.write((uid, "true", username, f"{{SIS:{employee}}},{{HR:E{700000 + index}}}",
                               given, family, middle, employee, f"{username}@{domain}", "",
                               f"+1-{self.plan.area_code}-555-01{rng.randrange(100):02d}", "", "",
                               "", preferred, school.sourced_id, pronouns))
            profile_id = ""
            if index % 8 == 0:
                # A handful of teachers carry an account on an outside system (1.2 Rostering §4.13.3).
                profile_id = f"prof-{uid}"
                if index % 16 == 0:
                    files.profiles.write((profile_id, uid, "lms", "lms.example.com", "courses",
                                          "Learning management system account", "sso", username))
                else:
                    files.profiles.write((profile_id, uid, "assessment", "assess.example.org", "",
                                          "Benchmark assessment platform", "password",
                                          f"{gslug}{fslug}{index + 1}"))
            files.roles.write((f"role-{uid}", uid, "primary", "teacher", year.start, year.end,
                               school.sourced_id, profile_id))

    def _write_students(self, school: _SchoolPlan, grade_plan: _GradePlan, first_number: int,
                        parent_number: list[int]) -> None:
        """One grade of one school. This is the hot loop of a large run: names are bound locally
        and enrollment and role lines are cut from templates made once per grade."""
        rng = self.rng
        random_ = rng.random
        files = self.files
        write_user = files.users.write
        write_role = files.roles.write
        add_role = files.roles.add_line
        write_demographics = files.demographics.write
        add_enrollments = files.enrollments.add_line
        person = self._person
        preferred_names = self._preferred
        plan = self.plan
        school_id = school.sourced_id
        grade = grade_plan.grade
        student_domain = f"students.{plan.domain}"
        width = self.student_width
        state, towns = plan.state, plan.towns
        # Born in the twelve months that make the student the right age on September 1.
        offset = 0 if grade == "KG" else int(grade)
        birth_first = dt.date(SCHOOL_YEAR - 7 - offset, 9, 2).toordinal()
        birth_days = dt.date(SCHOOL_YEAR - 6 - offset, 9, 2).toordinal() - birth_first
        fromordinal = dt.date.fromordinal
        ids = ("sourcedId", "userSourcedId")
        (u0, u1, u2, u3, u4, u5, u6, u7, u8, u9, u10, u11, u12) = files.users.template(
            {"enabledUser": "true", "grades": grade, "primaryOrgSourcedId": school_id},
            ("sourcedId", "username", "userIds", "givenName", "familyName", "middleName",
             "identifier", "email", "agentSourcedIds", "userMasterIdentifier",
             "preferredGivenName", "pronouns"))
        add_user = files.users.add_line
        role0, role1, role2 = files.roles.template(
            {"roleType": "primary", "role": "student", "beginDate": self.year.start,
             "endDate": self.year.end, "orgSourcedId": school_id}, ids)
        # For each slot: its options, each as (sections, mix, one line template per section).
        slots = []
        for slot in grade_plan.slots:
            options = []
            for course in slot:
                templates = [files.enrollments.template(
                    {"classSourcedId": f"{course.class_prefix}{section + 1}",
                     "schoolSourcedId": school_id, "role": "student", "beginDate": course.begin,
                     "endDate": course.end}, ids) for section in range(course.sections)]
                options.append((course.sections, course.mix, templates))
            slots.append((len(options), options))
        enrollment_number = self.enrollment_number
        progress = self.progress

        for i in range(grade_plan.students):
            number = first_number + i + 1
            if not number % _PROGRESS_STEP:
                files.flush()
                if progress is not None:
                    progress(_PROGRESS_STEP)
            uid = f"stu-{number:0{width}d}"
            sis = 100000 + number
            # A bijection on ten digits, so state ids look scattered but never collide.
            state_id = f"{state}{(number * 7_368_787 + 1_234_567) % 10_000_000_000:010d}"
            sex, given, gslug, middle, family, fslug = person(_STUDENT_SEX_CUMULATIVE)
            preferred, pronouns = preferred_names(given, sex, 0.02)

            agents = ""
            parents = []
            if random_() < 0.3:
                for _ in range(2 if random_() < 0.55 else 1):
                    parent_number[0] += 1
                    parents.append(self._parent(parent_number[0], uid, school_id, family, fslug))
                agents = parents[0][0] if len(parents) == 1 else f'"{parents[0][0]},{parents[1][0]}"'

            # Template values go in as CSV text: names are plain (checked on import), the
            # two-id userIds field is quoted here.
            username = f"{gslug[:1]}{fslug}{sis}"
            add_user(f'{u0}{uid}{u1}{username}{u2}"{{SIS:{sis}}},{{StateID:{state_id}}}"{u3}'
                     f"{given}{u4}{family}{u5}{middle}{u6}{sis}{u7}{username}@{student_domain}"
                     f"{u8}{agents}{u9}{state_id}{u10}{preferred}{u11}{pronouns}{u12}")
            add_role(f"{role0}role-{uid}{role1}{uid}{role2}")
            for parent in parents:
                write_user(parent[1])
                write_role(parent[2])

            lines = []
            for shift, (count, options) in enumerate(slots, 1):
                if count == 1:
                    sections, mix, templates = options[0]
                    rank = i
                else:
                    sections, mix, templates = options[(i + shift * (i // count)) % count]  # _option
                    rank = i // count
                t0, t1, t2 = templates[(rank + mix * (rank // sections)) % sections]
                enrollment_number += 1
                lines.append(f"{t0}enr-{enrollment_number}{t1}{uid}{t2}")
            add_enrollments("".join(lines))

            races = _RACE_VALUES[bisect(_RACE_CUMULATIVE, random_())]
            hispanic = "true" if random_() < _HISPANIC_SHARE else "false"
            birth = fromordinal(birth_first + int(random_() * birth_days)).isoformat()
            if random_() < _FOREIGN_BORN_SHARE:
                country = _BIRTH_COUNTRIES[int(random_() * len(_BIRTH_COUNTRIES))]
                birth_state, city = "", ""
            else:
                country = "US"
                if random_() < 0.8:
                    birth_state, city = state, towns[int(random_() * len(towns))]
                else:
                    birth_state, city = _US_STATES[int(random_() * len(_US_STATES))], ""
            residence = _RESIDENCE_CODES[bisect(_RESIDENCE_CUMULATIVE, random_())]
            write_demographics((uid, birth, sex) + races + (hispanic, country, birth_state, city,
                                                            residence))
        self.enrollment_number = enrollment_number

    def _parent(self, number: int, student_id: str, school_id: str, student_family: str,
                student_family_slug: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
        """A parent or guardian of one student: (sourcedId, user row, role row)."""
        rng = self.rng
        sex, given, gslug, middle, family, fslug = self._person(_TEACHER_SEX_CUMULATIVE)
        role = "guardian" if rng.random() < 0.12 else "parent"
        # Most parents share the child's family name; guardians less often.
        if rng.random() < (0.85 if role == "parent" else 0.5):
            family, fslug = student_family, student_family_slug
        uid = f"par-{number:0{self.student_width}d}"
        email = f"{gslug}.{fslug}{number}@{('example.com', 'example.net', 'example.org')[number % 3]}"
        phone = f"+1-{self.plan.area_code}-555-01{rng.randrange(100):02d}"
        sms = phone if rng.random() < 0.5 else ""
        user = (uid, "true", email, f"{{SIS:G{number:07d}}}", given, family, middle, f"G{number:07d}",
                email, sms, phone, student_id, "", "", "", school_id, "")
        year = self.year
        role_row = (f"role-{uid}", uid, "primary", role, year.start, year.end, school_id, "")
        return uid, user, role_row
