// Findings picked from the knowledge base (a datalist of "question — value" labels) become chips
// with hidden `evidence` inputs holding the DDXPlus tokens.
(function () {
  const search = document.getElementById("finding-search");
  const options = document.getElementById("finding-options");
  const list = document.getElementById("findings");
  if (!search) return;
  function add() {
    const option = [...options.options].find((o) => o.value === search.value);
    if (!option || list.querySelector(`input[value="${option.dataset.token}"]`)) return;
    const item = document.createElement("li");
    const input = Object.assign(document.createElement("input"), { type: "hidden", name: "evidence", value: option.dataset.token });
    const remove = Object.assign(document.createElement("button"), { type: "button", textContent: "remove" });
    remove.addEventListener("click", () => item.remove());
    item.append(option.value, " ", input, remove);
    list.append(item);
    search.value = "";
  }
  document.getElementById("add-finding").addEventListener("click", add);
  // Chips kept from a note reading: a picked finding's remove, a note proposal's reject.
  document.addEventListener("click", (event) => {
    if (event.target.matches(".remove-finding, .reject-proposal")) event.target.closest("li").remove();
  });
  search.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); add(); } });
})();
