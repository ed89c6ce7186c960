"""Findings the way clinicians say them: search by clinical terms and values, and findings proposed
from a free-text note with negation and uncertainty. Rules and a synonym table only (no model).

The knowledge base words its findings as patient questions ("Are you experiencing shortness of breath
or difficulty breathing…?", "Where is the pain located?" with values). A query is first restated in
that wording through SYNONYMS (the clinician's phrase → the knowledge base's words), then scored by
stemmed token overlap, weighted by how rare each word is, against each question and each of its values:
"chest pain" finds the pain-location question with the value "upper chest", and says which value matched.

The note parser marks the synonym phrases and body parts a note names, and gives each a status with
NegEx-style rules (Chapman et al. 2001): a negation trigger ("denies", "no", "without") before a
finding in the same clause makes it absent, an uncertainty trigger ("possible", "?", "rule out") makes
it uncertain; a clause ends at a sentence end or a termination word ("but", "however"). Conditions
("?PE", "possible pneumonia") are not findings and are never proposed. Every proposal carries its span
of the note: proposals only, for the clinician to confirm.

Django-free: evidences are any objects with code, question_en, data_type, possible_values and
value_label(value) (the Evidence model is one).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import Stemmer

SEPARATOR = "_@_"
STOPWORDS = frozenset(
    "a an and are as at be been by can could did do does for from get had has have having i if in into is it "
    "its me more my of on or so some than that the their them then there these they this those to too up very "
    "was we were what when where which who will with you your yours".split())
SIDES = {"(L)": "left", "(R)": "right"}  # how a value label marks its side
NO_VALUE_LABELS = frozenset({"na", "nowhere", "n", "y"})  # values that name no finding of their own

# The clinician's phrase → the knowledge base's own wording (DDXPlus question and value words).
SYNONYMS: dict[str, str] = {
    "short of breath": "shortness of breath difficulty breathing",
    "shortness of breath": "shortness of breath difficulty breathing",
    "sob": "shortness of breath difficulty breathing",
    "dyspnea": "shortness of breath difficulty breathing",
    "dyspnoea": "shortness of breath difficulty breathing",
    "breathless": "shortness of breath difficulty breathing",
    "breathlessness": "shortness of breath difficulty breathing",
    "can't catch breath": "shortness of breath difficulty breathing",
    "cannot catch breath": "shortness of breath difficulty breathing",
    "trouble breathing": "shortness of breath difficulty breathing",
    "exertional dyspnea": "out of breath minimal physical effort",
    "dyspnea on exertion": "out of breath minimal physical effort",
    "orthopnea": "worse lying down alleviated sitting up",
    "paroxysmal nocturnal dyspnea": "choking shortness of breath wake up night",
    "coughing blood": "coughing up blood",
    "cough with blood": "coughing up blood",
    "coughing up blood": "coughing up blood",
    "hemoptysis": "coughing up blood",
    "haemoptysis": "coughing up blood",
    "productive cough": "cough produces colored abundant sputum",
    "sputum": "cough produces colored abundant sputum",
    "phlegm": "cough produces colored abundant sputum",
    "cough": "cough",
    "coughing": "cough",
    "fever": "fever",
    "febrile": "fever",
    "pyrexia": "fever",
    "chills": "chills shivers",
    "rigors": "chills shivers",
    "sweating": "increased sweating",
    "diaphoresis": "increased sweating",
    "diaphoretic": "increased sweating",
    "sweaty": "increased sweating",
    "palpitations": "heart beating fast racing irregularly palpitations",
    "racing heart": "heart beating fast racing irregularly palpitations",
    "tachycardia": "heart beating fast racing irregularly palpitations",
    "irregular heartbeat": "heart beating very irregularly disorganized pattern",
    "syncope": "lose consciousness",
    "fainted": "lose consciousness",
    "passed out": "lose consciousness",
    "loss of consciousness": "lose consciousness",
    "presyncope": "lightheaded dizzy about to faint",
    "near fainting": "lightheaded dizzy about to faint",
    "dizziness": "slightly dizzy lightheaded",
    "dizzy": "slightly dizzy lightheaded",
    "lightheaded": "slightly dizzy lightheaded",
    "vertigo": "slightly dizzy lightheaded",
    "nausea": "nauseous vomiting",
    "nauseated": "nauseous vomiting",
    "vomiting": "vomited several times efforts vomit",
    "emesis": "vomited several times efforts vomit",
    "hematemesis": "thrown up blood coffee beans",
    "vomiting blood": "thrown up blood coffee beans",
    "melena": "stools black coal",
    "black stools": "stools black coal",
    "blood in stool": "light red blood clots stool",
    "rectal bleeding": "light red blood clots stool",
    "hematochezia": "light red blood clots stool",
    "diarrhea": "diarrhea increase stool frequency",
    "diarrhoea": "diarrhea increase stool frequency",
    "loose stools": "diarrhea increase stool frequency",
    "heartburn": "burning sensation stomach throat bitter taste",
    "reflux": "burning sensation stomach throat bitter taste",
    "bloating": "abdomen bloated distended",
    "distension": "abdomen bloated distended",
    "weight loss": "involuntary weight loss",
    "losing weight": "involuntary weight loss",
    "weight gain": "gained weight",
    "anorexia": "decrease appetite",
    "poor appetite": "decrease appetite",
    "fatigue": "fatigued non restful sleep",
    "tired": "fatigued non restful sleep",
    "tiredness": "fatigued non restful sleep",
    "malaise": "fatigue generalized vague discomfort",
    "myalgia": "diffuse muscle pain",
    "muscle aches": "diffuse muscle pain",
    "sore throat": "sore throat",
    "pharyngitis": "sore throat",
    "odynophagia": "sore throat",
    "dysphagia": "difficulty swallowing",
    "trouble swallowing": "difficulty swallowing",
    "hoarseness": "tone voice deeper softer hoarse",
    "hoarse voice": "tone voice deeper softer hoarse",
    "runny nose": "nasal congestion clear runny nose",
    "rhinorrhea": "nasal congestion clear runny nose",
    "congestion": "nasal congestion clear runny nose",
    "stuffy nose": "nasal congestion clear runny nose",
    "anosmia": "lost sense smell",
    "loss of smell": "lost sense smell",
    "wheezing": "wheezing sound exhale",
    "wheeze": "wheezing sound exhale",
    "stridor": "high pitched sound breathing in",
    "pleuritic pain": "pain increased breathe deeply",
    "pleuritic chest pain": "pain increased breathe deeply",
    "swollen glands": "swollen painful lymph nodes",
    "lymphadenopathy": "swollen painful lymph nodes",
    "rash": "lesions redness skin",
    "skin rash": "lesions redness skin",
    "pallor": "skin paler",
    "pale": "skin paler",
    "confusion": "confused disorientated",
    "confused": "confused disorientated",
    "disoriented": "confused disorientated",
    "slurred speech": "difficulty articulating words speaking",
    "dysarthria": "difficulty articulating words speaking",
    "double vision": "double vision",
    "diplopia": "double vision",
    "facial droop": "weakness paralysis one side face",
    "seizure": "violent sustained muscle contractions absence episode",
    "anxious": "feel anxious",
    "anxiety": "feel anxious",
    "tingling": "numbness loss sensation tingling",
    "numbness": "numbness loss sensation tingling",
    "red eye": "diffuse redness eyes",
    "itchy eyes": "severe itching eyes",
    "watery eyes": "eyes produce excessive tears",
    "swelling": "swelling areas body",
    "edema": "swelling areas body",
    "oedema": "swelling areas body",
    "leg swelling": "swelling areas body",
    "bruising": "unusual bleeding bruising",
    "smoker": "smoke cigarettes",
    "smokes": "smoke cigarettes",
    "smoking": "smoke cigarettes",
    "hypertension": "high blood pressure medications treat",
    "htn": "high blood pressure medications treat",
    "high cholesterol": "high cholesterol medications treat",
    "hyperlipidemia": "high cholesterol medications treat",
    "diabetes": "diabetes",
    "diabetic": "diabetes",
    "obese": "significantly overweight",
    "obesity": "significantly overweight",
    "pregnant": "pregnant",
    "recent surgery": "surgery within last month",
    "immobilized": "unable move get up 3 consecutive days",
    "bedridden": "unable move get up 3 consecutive days",
    "dvt": "deep vein thrombosis",
    "copd": "chronic obstructive pulmonary disease copd",
    "asthma": "asthma bronchodilator",
    "angina": "heart attack angina chest pain",
    "heart attack": "heart attack angina chest pain",
    "myocardial infarction": "heart attack angina chest pain",
    "heart failure": "heart failure",
    "chest pain at rest": "chest pain even at rest",
    "headache": "pain forehead top head",
    "abdominal pain": "pain belly epigastric",
    "stomach ache": "pain belly epigastric",
    "belly pain": "pain belly epigastric",
    "epigastric pain": "pain epigastric",
    "back pain": "pain lumbar spine",
    "low back pain": "pain lumbar spine",
}
# Phrases only a note is read for: in a search, "pain" is better left to match the pain questions and values.
# Words that name a finding's absence ("afebrile": no fever), read as absent whatever surrounds them.
ABSENT_PHRASES: dict[str, str] = {"afebrile": "fever", "apyrexial": "fever"}
NOTE_SYNONYMS: dict[str, str] = {**ABSENT_PHRASES, "pain": "pain somewhere related reason consulting",
                                 "hurts": "pain somewhere related reason consulting"}
# Lay words for body parts → the knowledge base's location words (its value labels).
BODY_PARTS: dict[str, str] = {
    "chest": "chest", "breast": "breast", "arm": "biceps", "upper arm": "biceps", "forearm": "forearm",
    "shoulder": "shoulder", "neck": "side of the neck", "jaw": "jaw", "throat": "pharynx", "back": "lumbar spine",
    "lower back": "lumbar spine", "upper back": "thoracic spine", "stomach": "epigastric", "epigastrium": "epigastric",
    "abdomen": "belly", "belly": "belly", "tummy": "belly", "head": "top of the head", "forehead": "forehead",
    "temple": "temple", "ear": "ear", "eye": "eye", "flank": "flank", "groin": "groin", "hip": "hip",
    "thigh": "thigh", "knee": "knee", "calf": "calf", "ankle": "ankle", "foot": "dorsal aspect of the foot",
    "hand": "dorsal aspect of the hand", "wrist": "dorsal aspect of the wrist", "tonsil": "tonsil",
    "cheek": "cheek", "mouth": "mouth", "nose": "nose", "testicle": "testicle", "scapula": "scapula",
}
NEGATIONS = ("no", "not", "denies", "denied", "deny", "without", "negative for", "absence of", "free of",
             "never", "nor", "no evidence of", "no history of", "resolved")
POST_NEGATIONS = ("denied", "absent", "ruled out", "negative", "none")
UNCERTAINTIES = ("?", "possible", "possibly", "probable", "probably", "suspected", "suspect", "suspicious for",
                 "query", "r/o", "rule out", "cannot exclude", "cannot rule out", "concern for", "concerning for",
                 "questionable", "may", "might", "likely", "unclear", "maybe", "vs", "versus", "differential")
TERMINATIONS = ("but", "however", "although", "though", "except", "yet", "reports", "endorses", "complains",
                "admits")
PAIN_WORDS = ("pain", "ache", "aching", "hurts", "hurting", "discomfort", "tenderness", "pressure", "tightness")
RADIATION_WORDS = ("radiating", "radiates", "radiated", "radiation", "spreading", "spreads", "travels", "going")

_stemmer = Stemmer.Stemmer("english")
_WORD = re.compile(r"\?(?=\w)|[a-z0-9]+(?:['/][a-z]+)?", re.IGNORECASE)


def _words(text: str) -> list[tuple[str, int, int]]:
    """The text's words, lowercased, with their character spans in `text` itself (lowercasing the whole
    text first could change its length); a "?" glued to a word is kept as a word."""
    return [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


def stems(text: str) -> list[str]:
    """The content words of `text`, stemmed ("breathing" → "breath"); stopwords dropped."""
    words = [w.replace("'", "") for w, _, _ in _words(text.replace("can't", "cannot")) if w != "?"]
    return _stemmer.stemWords([w for w in words if w not in STOPWORDS])


def _restated(query: str) -> str:
    """The query with each synonym phrase it holds (longest first) replaced by the knowledge base's wording."""
    text = " " + " ".join(w for w, _, _ in _words(query.replace("can't", "cannot"))) + " "
    for phrase in sorted(SYNONYMS, key=len, reverse=True):
        key = " " + " ".join(w for w, _, _ in _words(phrase.replace("can't", "cannot"))) + " "
        if key in text:
            text = text.replace(key, " " + SYNONYMS[phrase] + " ")
    for part in sorted(BODY_PARTS, key=len, reverse=True):
        if f" {part} " in text and BODY_PARTS[part] != part:
            text = text.replace(f" {part} ", f" {part} {BODY_PARTS[part]} ")
    return text


# --- search ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """A question, or one value of a question, as search sees it."""
    code: str
    token: str  # what the clinician records: the code, or a value token "E_55_@_V_101"
    question: str
    value: str | None
    value_label: str | None
    words: frozenset[str]  # stems of the question and of the value label
    value_words: frozenset[str]  # with "left"/"right" for a sided label ("biceps(L)")
    recordable: bool  # a yes/no question or a value: what a case's evidence may hold


def _is_scale(evidence) -> bool:
    return bool(evidence.possible_values) and all(isinstance(v, int) for v in evidence.possible_values)


def _side_free(label: str) -> str:
    return re.sub(r"\((?:R|L)\)", " ", label)


def entries(evidences) -> list[Entry]:
    """Every question and every value that names a finding of its own (not "NA", "nowhere", scales)."""
    found = []
    for evidence in evidences:
        question_words = frozenset(stems(evidence.question_en))
        found.append(Entry(evidence.code, evidence.code, evidence.question_en, None, None, question_words,
                           frozenset(), evidence.data_type == "B"))
        if evidence.data_type == "B" or _is_scale(evidence):
            continue
        for value in evidence.possible_values:
            label = evidence.value_label(value)
            value_words = frozenset(stems(_side_free(label)))
            if label.lower() in NO_VALUE_LABELS or not value_words:
                continue
            value_words |= {side for mark, side in SIDES.items() if mark in label}
            found.append(Entry(evidence.code, f"{evidence.code}{SEPARATOR}{value}", evidence.question_en,
                               str(value), label, question_words | value_words, value_words, True))
    return found


def _rarity(found: list[Entry]) -> dict[str, float]:
    """Inverse document frequency of each stem, a document being one evidence (its question and values)."""
    documents: dict[str, set[str]] = {}
    for entry in found:
        documents.setdefault(entry.code, set()).update(entry.words)
    counts: dict[str, int] = {}
    for words in documents.values():
        for word in words:
            counts[word] = counts.get(word, 0) + 1
    return {word: math.log(1 + len(documents) / count) for word, count in counts.items()}


class FindingIndex:
    """The searchable questions and values of one knowledge base."""

    def __init__(self, evidences):
        self.entries = entries(evidences)
        self.rarity = _rarity(self.entries)
        self._reader: NoteReader | None = None

    @property
    def reader(self) -> NoteReader:
        """The note reader over this index (its phrases resolved once)."""
        if self._reader is None:
            self._reader = NoteReader(self)
        return self._reader

    def search(self, query: str, *, limit: int = 10, recordable_only: bool = False) -> list[dict]:
        """Entries ranked by the rarity-weighted share of the (restated) query's words they hold; a value
        entry must match a word of its value, else its question alone says it. Ties go to the entry with
        fewer words of its own (the more specific)."""
        wanted = set(stems(_restated(query)))
        if not wanted:
            return []
        total = sum(self.rarity.get(w, 1.0) for w in wanted)
        scored = []
        for entry in self.entries:
            matched = wanted & entry.words
            if not matched or (entry.value is not None and not wanted & entry.value_words) or (
                    recordable_only and not entry.recordable):
                continue
            coverage = sum(self.rarity.get(w, 1.0) for w in matched) / total
            specificity = len(matched) / len(entry.words)
            scored.append((round(coverage + 0.1 * specificity, 4), entry))
        scored.sort(key=lambda item: (-item[0], item[1].token))
        return [{"code": e.code, "token": e.token, "question": e.question, "score": score,
                 "matched_value": None if e.value is None else {"value": e.value, "label": e.value_label}}
                for score, e in scored[:limit]]


@lru_cache(maxsize=8)
def _cached_index(key: tuple) -> FindingIndex:
    return FindingIndex([_Row(*row) for row in key])


@dataclass(frozen=True)
class _Row:
    code: str
    question_en: str
    data_type: str
    possible_values: tuple
    labels: tuple

    def value_label(self, value) -> str:
        return dict(self.labels).get(str(value)) or str(value)


def finding_index(evidences) -> FindingIndex:
    """The index of these evidences, built once per distinct knowledge base content."""
    key = tuple((e.code, e.question_en, e.data_type, tuple(e.possible_values),
                 tuple((str(v), e.value_label(v)) for v in e.possible_values)) for e in evidences)
    return _cached_index(key)


# --- note proposals --------------------------------------------------------------------------

def _phrase_words(phrase: str) -> tuple[str, ...]:
    return tuple(w for w, _, _ in _words(phrase.replace("can't", "cannot")))


def _clauses(words: list[tuple[str, int, int]], note: str) -> list[list[int]]:
    """Word positions grouped into clauses: a sentence end or a termination word closes one."""
    clauses, current = [], []
    for i, (word, start, _) in enumerate(words):
        gap = note[words[i - 1][2]:start] if i else ""
        if re.search(r"[.;!\n]|\?(?!\w)", gap) or word in TERMINATIONS:
            clauses.append(current)
            current = []
            if word in TERMINATIONS:
                continue
        current.append(i)
    clauses.append(current)
    return [clause for clause in clauses if clause]


def _find(clause_words: list[str], phrases) -> list[tuple[int, int, str]]:
    """(first, past-last, phrase) of each phrase found, longest first, never overlapping."""
    taken, found = set(), []
    for phrase in sorted(phrases, key=lambda p: -len(_phrase_words(p))):
        key = _phrase_words(phrase)
        for i in range(len(clause_words) - len(key) + 1):
            span = range(i, i + len(key))
            if tuple(clause_words[i:i + len(key)]) == key and not taken & set(span):
                taken |= set(span)
                found.append((i, i + len(key), phrase))
    return sorted(found)


def _status(clause_words: list[str], first: int, last: int, segment: int) -> str:
    """absent, uncertain or present, from the triggers before the mention (or a negation just after it).

    A negation reaches over the commas of a list ("denies fever, chills or cough"); an uncertainty only
    over its own comma-separated part (`segment` is where that part starts)."""
    before = " " + " ".join(clause_words[:first]) + " "
    after = " " + " ".join(clause_words[last:last + 3]) + " "
    if any(f" {t} " in before for t in NEGATIONS) or any(f" {t} " in after for t in POST_NEGATIONS):
        return "absent"
    if any(f" {t} " in " " + " ".join(clause_words[segment:first]) + " " for t in UNCERTAINTIES):
        return "uncertain"
    return "present"


class NoteReader:
    """Proposes findings from a note: synonym phrases resolved to the knowledge base by FindingIndex,
    and pain locations (and radiation) from the body parts a pain mention names."""

    def __init__(self, index: FindingIndex):
        self.index = index
        self.phrases = {phrase: self._resolve(wording) for phrase, wording in {**SYNONYMS, **NOTE_SYNONYMS}.items()}
        self.phrases = {phrase: entry for phrase, entry in self.phrases.items() if entry}
        self.codes = {e.code for e in index.entries}

    def _resolve(self, wording: str) -> dict | None:
        results = self.index.search(wording, limit=1, recordable_only=True)
        return results[0] if results else None

    def _location(self, question_code: str, part: str, side: str | None) -> dict | None:
        """The value of a location question that names `part` (on `side` when it has sides), fewest words first."""
        wanted = set(stems(BODY_PARTS[part]))
        fits = [e for e in self.index.entries if e.code == question_code and e.value_label
                and wanted <= e.value_words]
        sided = [e for e in fits if side in e.value_words]
        fits = sided or [e for e in fits if not e.value_words & set(SIDES.values())] or fits
        if not fits:
            return None
        best = min(fits, key=lambda e: (len(e.value_words), e.token))
        return {"code": best.code, "token": best.token, "question": best.question,
                "matched_value": {"value": best.value, "label": best.value_label}}

    def propose(self, note: str) -> list[dict]:
        """Each finding named, once per status, in the order the note names them."""
        words = _words(note)
        after_comma = {i for i in range(1, len(words)) if "," in note[words[i - 1][2]:words[i][1]]}
        proposals, seen = [], set()
        for clause in _clauses(words, note):
            mentions = self._mentions([words[i][0] for i in clause])
            breaks = [k for k, i in enumerate(clause) if i in after_comma]
            for first, last, entry in mentions:
                segment = max([k for k in breaks if k <= first], default=0)
                status = _status([words[i][0] for i in clause], first, last, segment)
                if note[words[clause[first]][1]:words[clause[last - 1]][2]].lower() in ABSENT_PHRASES:
                    status = "absent"
                if (entry["token"], status) in seen:
                    continue
                seen.add((entry["token"], status))
                start, end = words[clause[first]][1], words[clause[last - 1]][2]
                proposals.append({**entry, "status": status, "text": note[start:end], "start": start, "end": end})
        return proposals

    def _mentions(self, clause_words: list[str]) -> list[tuple[int, int, dict]]:
        """(first, past-last, finding) of the synonym phrases and, in a clause about pain, the body parts."""
        mentions = [(first, last, self.phrases[phrase]) for first, last, phrase in _find(clause_words, self.phrases)]
        if not any(word in PAIN_WORDS for word in clause_words):
            return mentions
        radiation = next((i for i, w in enumerate(clause_words) if w in RADIATION_WORDS), len(clause_words))
        for first, last, part in _find(clause_words, BODY_PARTS):
            side = clause_words[first - 1] if first and clause_words[first - 1] in SIDES.values() else None
            code = "E_57" if first > radiation else "E_55"
            entry = self._location(code, part, side) if code in self.codes else None
            if entry:
                mentions.append((first - 1 if side else first, last, entry))
        return mentions


def note_findings(evidences, note: str) -> list[dict]:
    """The findings `note` names, each with its status and span: proposals for the clinician to confirm."""
    return finding_index(evidences).reader.propose(note)
