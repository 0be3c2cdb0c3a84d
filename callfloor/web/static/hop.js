// A signed link's hop: on to the page without the link, replacing it in the history.
const next = document.querySelector('meta[name="next"]');
if (next) location.replace(next.content);
