// Sign in: a token is exchanged once for HttpOnly session cookies; it is never stored.
import { t, translate } from "./common.js";

translate();
const params = new URLSearchParams(location.search);
// Only a path of this service: never a redirection elsewhere.
function next() {
  const target = params.get("next") || "/";
  return target.startsWith("/") && !target.startsWith("//") ? target : "/";
}

async function show() {
  const answer = await fetch("/api/v1/session", { credentials: "same-origin" });
  const session = await answer.json();
  document.getElementById("open-note").classList.toggle("hidden", !session.reads_open);
  const kinds = Object.keys(session.kinds || {});
  document.getElementById("state").textContent = kinds.length ? `${t("signed_in")}: ${kinds.join(", ")}` : "";
  document.getElementById("logout").classList.toggle("hidden", !kinds.length);
}

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  const error = document.getElementById("error");
  error.textContent = "";
  const answer = await fetch("/api/v1/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: input.value }),
  });
  input.value = "";
  if (answer.ok) {
    location.replace(next());
    return;
  }
  const problem = await answer.json().catch(() => ({}));
  error.textContent = `${t("login_failed")}: ${problem.error || answer.status}`;
});

document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/api/v1/session", { method: "DELETE", credentials: "same-origin" });
  show();
});

show();
