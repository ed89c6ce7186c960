"""De-identification of free text before it is stored, logged or sent to model_service.

Rules, in order: e-mail addresses, ID numbers (SSN-like groups and runs of six or more digits),
phone numbers, dates, street addresses and postcodes, then names introduced by a title or by
"name is/called". Each match becomes a bracketed placeholder, so the note stays readable.
"""
import re

PATTERNS = [
    ("[EMAIL]", re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")),
    ("[ID]", re.compile(r"\b\d{3}-\d{2}-\d{4}\b|\b[A-Z]{0,3}\d{6,}\b")),
    ("[PHONE]", re.compile(r"(?<!\w)(?:\+\d{1,3}[\s.-]?)?(?:\(?\d{2,4}\)?[\s.-]?){2,4}\d{2,4}(?!\w)")),
    ("[DATE]", re.compile(r"\b\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}\b|\b\d{1,2}(?:st|nd|rd|th)?\s+(?:Jan|Feb|Mar|Apr|May|Jun|"
                          r"Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?(?:\s+\d{2,4})?\b|\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|"
                          r"Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2}(?:st|nd|rd|th)?(?:,?\s+\d{2,4})?\b", re.IGNORECASE)),
    ("[ADDRESS]", re.compile(r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s){1,3}(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|"
                             r"Boulevard|Blvd|Way|Court|Ct|Place|Pl|Square|Sq)\b\.?")),
    ("[POSTCODE]", re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")),
    ("[NAME]", re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+[A-Z][a-zA-Z'-]+(?:\s+[A-Z][a-zA-Z'-]+)?")),
    ("[NAME]", re.compile(r"(?i:\b(?:name is|named|called|patient)\s+)([A-Z][a-zA-Z'-]+(?:\s+[A-Z][a-zA-Z'-]+)?)")),
]


def deidentify(text: str) -> str:
    for placeholder, pattern in PATTERNS:
        if pattern.groups:  # only the captured name goes, the words that introduce it stay
            text = pattern.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + placeholder, text)
        else:
            text = pattern.sub(placeholder, text)
    return text
