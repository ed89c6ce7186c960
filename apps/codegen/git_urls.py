"""One key per git remote, so the ssh and https forms of a repository's URL name the same repository."""
from __future__ import annotations

import re

_SCP_FORM = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>(?!//).+)$")  # git@github.com:org/repo.git
_URL_FORM = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?(?P<host>[^/:]+)(?::\d+)?/(?P<path>.+)$", re.IGNORECASE)


def git_remote_key(url: str) -> str:
    """`host/owner/repo` (host lower-cased, no user, port, scheme, trailing `.git` or slash) for a git
    remote in URL form (https, ssh://, git://) or scp form (git@host:owner/repo); else the URL itself."""
    url = url.strip()
    match = _URL_FORM.match(url) or _SCP_FORM.match(url)
    if match is None:
        return url.rstrip("/")
    path = match["path"].strip("/")
    path = path[:-4] if path.endswith(".git") else path
    return f"{match['host'].lower()}/{path.strip('/')}"
