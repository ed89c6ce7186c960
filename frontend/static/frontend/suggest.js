// Streams a suggestion (Server-Sent Events over a POST) into the conversation page, then lets the
// agent accept, edit or reject it (naming the right entry, optionally) through the customer-service API.
(function () {
  const panel = document.getElementById("suggestion-panel");
  if (!panel) return;
  const csrf = () => document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] || "";
  const $ = (id) => document.getElementById(id);
  let messageId = null;

  function refreshMessages() {
    if (window.htmx) window.htmx.trigger("#messages", "refresh");
  }

  function showDone(data) {
    messageId = data.id;
    $("suggestion-text").textContent = data.text;
    const meta = data.conversation_status === "handoff"
      ? `Handed off to a human: ${data.handoff_reason}`
      : `Confidence ${Number(data.confidence).toFixed(2)}` +
        (data.worded_by ? ` · worded by ${data.worded_by === "base model" ? "the base model" : `the ${data.worded_by} adapter`}` : "");
    $("suggestion-meta").textContent = meta;
    $("suggestion-meta").dataset.status = data.conversation_status;
    const list = $("suggestion-citations");
    list.replaceChildren(...data.citations.map((c) => {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = `/console/customer-service/entries/${c.entry_id}/`;
      link.textContent = c.question;
      item.append("Source: ", link);
      return item;
    }));
    $("suggestion-actions").hidden = data.citations.length === 0;
    refreshMessages();
  }

  async function suggest() {
    $("suggest").disabled = true;
    $("suggestion").hidden = false;
    $("suggestion-text").textContent = "";
    $("suggestion-meta").textContent = "Thinking…";
    $("suggestion-citations").replaceChildren();
    $("suggestion-actions").hidden = true;
    try {
      const response = await fetch(panel.dataset.suggestUrl, {
        method: "POST", headers: { "X-CSRFToken": csrf() }, credentials: "same-origin",
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        $("suggestion-meta").textContent = body.detail || `Suggestion failed (${response.status}).`;
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] || "{}");
          if (event === "token") $("suggestion-text").textContent += data.text;
          if (event === "done") showDone(data);
        }
      }
    } finally {
      $("suggest").disabled = false;
    }
  }

  async function feedback(action) {
    if (action === "edit") {
      $("edit-box").hidden = false;
      $("edit-text").value = $("suggestion-text").textContent;
      return;
    }
    const body = new URLSearchParams({ action, text: action === "edited" ? $("edit-text").value : "" });
    // a rejected suggestion may name the entry that was right: a training pair for retrieval tuning
    if (action === "rejected" && $("reject-entry").value) body.set("entry", $("reject-entry").value);
    const response = await fetch(`${panel.dataset.feedbackUrl}${messageId}/feedback`, {
      method: "POST", headers: { "X-CSRFToken": csrf() }, credentials: "same-origin", body,
    });
    const result = await response.json();
    $("suggestion-meta").textContent = response.ok ? `Suggestion ${result.feedback}.` : (result.detail || "Failed.");
    $("suggestion-actions").hidden = response.ok;
    $("edit-box").hidden = true;
    refreshMessages();
  }

  $("suggest").addEventListener("click", suggest);
  $("suggest").disabled = false;  // rendered disabled: a click before this script ran would be lost
  $("suggestion-actions").addEventListener("click", (event) => {
    const action = event.target.dataset.action;
    if (action) feedback(action);
  });
})();
