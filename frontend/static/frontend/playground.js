// The completion playground: sends the code around the textarea's cursor to the completion API.
(function () {
  const $ = (id) => document.getElementById(id);
  const csrf = () => document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] || "";
  $("pg-complete").addEventListener("click", async () => {
    const code = $("pg-code").value;
    const cursor = $("pg-code").selectionStart ?? code.length;
    const body = {
      language: $("pg-language").value,
      segments: { prefix: code.slice(0, cursor), suffix: code.slice(cursor), filepath: $("pg-filepath").value },
      debug_options: { return_snippets: true, return_prompt: true },
    };
    if ($("pg-repository").value) body.repository = Number($("pg-repository").value);
    $("pg-complete").disabled = true;
    try {
      const response = await fetch("/api/codegen/v1/completions", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() }, body: JSON.stringify(body),
      });
      const data = await response.json();
      $("pg-result").hidden = false;
      if (!response.ok) {
        $("pg-completion").textContent = "";
        $("pg-summary").textContent = data.detail || `Failed (${response.status})`;
        $("pg-debug").textContent = JSON.stringify(data, null, 2);
        return;
      }
      const debug = data.debug_data || {};
      const text = data.choices[0].text;
      $("pg-completion").textContent = text;
      const guard = (debug.guard || []).map((g) => `candidate ${g.candidate}: ${g.action}`).join(", ");
      $("pg-summary").textContent = `${text ? "Completion" : "No completion"} (${debug.multiline ? "multi-line" : "single line"}; ` +
        `${(debug.snippets || []).length} context snippets; guard: ${guard || "—"}; ${debug.timings ? debug.timings.total_ms : "?"} ms)`;
      $("pg-summary").dataset.completionId = data.id;
      $("pg-debug").textContent = JSON.stringify(debug, null, 2);
    } finally {
      $("pg-complete").disabled = false;
    }
  });
})();
