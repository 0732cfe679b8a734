// The reader's page: search as you type, a book, sign-in, ratings, shelves, "for you" and trending.
// The state is the query string (/?q=...&author=..., /?book=ID), so every view is a shareable URL.
import { api, ApiError, enc } from "./api.js";
import { loadConfig, session, signIn, signOut } from "./auth.js";
import { cover, h, highlighted, replace, stars } from "./dom.js";

const DEBOUNCE_MS = 120;
const FACETS = [
  ["authors", "author", "Author"], ["subjects", "subject", "Subject"],
  ["decade", "decade", "Decade"], ["language", "language", "Language"],
];
const SHELVES = { want_to_read: "Want to read", currently_reading: "Currently reading", read: "Read" };
const LANGUAGES = new Intl.DisplayNames(["en"], { type: "language" });

const $ = (id) => document.getElementById(id);
const input = $("q");
const view = $("view");
const status = $("status");
let searchSeq = 0;
let searchAbort = null;
let debounce = 0;

function say(text) { status.textContent = text; }

// A part of a view that loads on its own: its content, and no longer marked as loading.
function fill(box, ...children) {
  box.classList.remove("loading");
  return replace(box, ...children);
}

function params() { return new URLSearchParams(location.search); }

function go(url, { replace: replacing = false } = {}) {
  if (url !== location.pathname + location.search) history[replacing ? "replaceState" : "pushState"](null, "", url);
  route();
}

// -- links that stay in the page
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-nav]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  go(link.getAttribute("href"));
});
window.addEventListener("popstate", route);

function bookLink(book, ...content) {
  return h("a", { href: `/?book=${enc(book.book_id)}`, "data-nav": true, class: "book-link" }, ...content);
}

function authorsText(authors) {
  return (authors || []).map((a) => (typeof a === "string" ? a : a.name)).join(", ");
}

function section(title, id, ...content) {
  return h("section", { class: "panel", "aria-labelledby": id }, h("h2", { id }, title), ...content);
}

function bookList(items, { reason = false, label } = {}) {
  if (!items.length) return h("p", { class: "empty" }, "Nothing here yet.");
  return h("ol", { class: "cards", "aria-label": label },
    items.map((b) => h("li", {}, bookLink(b, cover(b, "M"),
      h("span", { class: "card-text" },
        h("span", { class: "title" }, b.title || b.book_id),
        h("span", { class: "authors" }, authorsText(b.authors)),
        reason && b.reason ? h("span", { class: "reason" }, b.reason) : null)))));
}

function problemText(error) {
  if (error instanceof ApiError) return error.status ? `${error.message} (HTTP ${error.status})` : error.message;
  return error.message || String(error);
}

// -- home
async function home() {
  document.title = "bookrec";
  input.value = "";
  say("");
  const me = session();
  const trending = h("div", { class: "loading" }, "Loading trending books…");
  const parts = [h("h1", { class: "visually-hidden" }, "Books to read: trending and picked for you"),
    section("Trending this week", "trending-heading", trending)];
  const forYou = h("div", { class: "loading" }, "Loading your recommendations…");
  const shelves = h("div", { class: "shelves" });
  if (me) parts.splice(1, 0, section("For you", "for-you-heading", forYou));
  else parts.push(h("p", { class: "hint" }, "Sign in to see books picked for you and your shelves."));
  if (me) parts.push(section("Your shelves", "shelves-heading", shelves));
  replace(view, ...parts);
  api("/trending?window=week&limit=12").then(
    (data) => fill(trending, bookList(data.items, { label: "Trending this week" })),
    (error) => fill(trending, h("p", { class: "error" }, `Trending is unavailable: ${problemText(error)}`)));
  if (!me) return;
  api(`/recommendations/${enc(me.sub)}?limit=12`).then(
    (data) => fill(forYou, bookList(data.recommendations, { reason: true, label: "For you" })),
    (error) => fill(forYou, h("p", { class: "error" }, `Recommendations are unavailable: ${problemText(error)}`)));
  for (const [shelf, name] of Object.entries(SHELVES)) {
    const box = h("div", { class: "loading" }, "Loading…");
    shelves.append(h("div", { class: "shelf" }, h("h3", { id: `shelf-${shelf}` }, name), box));
    api(`/users/${enc(me.sub)}/shelves/${shelf}?limit=12`).then(
      (data) => fill(box, bookList(data.items, { label: name })),
      (error) => fill(box, h("p", { class: "error" }, problemText(error))));
  }
}

// -- search
function filtersFrom(p) {
  return Object.fromEntries(FACETS.map(([, key]) => [key, p.getAll(key)]));
}

function searchUrl(q, filters) {
  const p = new URLSearchParams({ q });
  for (const [key, values] of Object.entries(filters)) for (const v of values) p.append(key, v);
  return `/?${p}`;
}

const fold = (w) => w.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();

// The query as the results read it: each corrected word as the word the top result matched (a typo can
// stand for several words: "poter" for "peter" and "potter"), else its alternatives.
function correctedQuery(query, corrections, top) {
  const matched = new Set();
  if (top && top.highlights) {
    const texts = [[top.title, top.highlights.title], ...top.authors.map((a, i) => [a, top.highlights.authors[i]])];
    for (const [text, ranges] of texts) {
      const chars = Array.from(text);
      for (const [start, end] of ranges || []) matched.add(fold(chars.slice(start, end).join("")));
    }
  }
  const byWord = new Map(corrections.map((c) => [c.word,
    c.corrected_to.find((w) => matched.has(fold(w))) || c.corrected_to.join(" or ")]));
  return query.split(/(\s+)/).map((w) => byWord.get(fold(w)) ?? w).join("");
}

async function search(q, filters) {
  const seq = ++searchSeq;
  if (searchAbort) searchAbort.abort();
  searchAbort = new AbortController();
  document.title = `${q} – bookrec`;
  const p = new URLSearchParams({ q, limit: "20", facets: "true", highlight: "true" });
  for (const [key, values] of Object.entries(filters)) for (const v of values) p.append(key, v);
  view.setAttribute("aria-busy", "true");
  let data;
  try {
    data = await api(`/search?${p}`, { signal: searchAbort.signal });
  } catch (error) {
    if (error.name === "AbortError" || seq !== searchSeq) return;
    view.removeAttribute("aria-busy");
    say("");
    replace(view, h("div", { class: "error", role: "alert" },
      h("h1", {}, "Search failed"), h("p", {}, problemText(error))));
    return;
  }
  if (seq !== searchSeq) return;
  renderResults(q, filters, data);
  view.removeAttribute("aria-busy");
  if (performance.getEntriesByName("keystroke", "mark").length) {
    performance.measure("keystroke-to-results", "keystroke");
    performance.clearMarks("keystroke");
  }
}

function renderResults(q, filters, data) {
  const filtered = Object.values(filters).some((v) => v.length);
  say(data.total ? `${data.total.toLocaleString("en")} ${data.total === 1 ? "book" : "books"} found` : "No books found");
  const heading = h("h1", { id: "results-heading", class: "visually-hidden" }, `Results for “${q}”`);
  const notes = [];
  if (data.corrections && data.corrections.length) {
    notes.push(h("p", { class: "corrections" }, "Showing results for ",
      h("strong", {}, correctedQuery(q, data.corrections, data.items[0]))));
  }
  let list;
  if (!data.items.length) {
    list = h("div", { class: "empty" }, h("p", {}, `No books match “${q}”${filtered ? " with these filters" : ""}.`),
      filtered ? h("p", {}, h("a", { href: searchUrl(q, {}), "data-nav": true }, "Search without the filters"))
               : h("p", {}, "Check the spelling, try fewer words, or search by author or ISBN."));
  } else {
    list = h("ol", { class: "results", id: "results", "aria-labelledby": "results-heading", "data-query": q },
      data.items.map((b) => h("li", {}, bookLink(b, cover(b, "S"),
        h("span", { class: "card-text" },
          h("span", { class: "title" }, highlighted(b.title, b.highlights?.title)),
          h("span", { class: "authors" }, b.authors.flatMap((name, i) =>
            [i ? ", " : "", ...highlighted(name, b.highlights?.authors?.[i])])),
          h("span", { class: "meta" }, [
            b.series ? `${b.series.name}${b.series.position != null ? ` #${b.series.position}` : ""}` : null,
            b.first_publish_year, b.rating_count ? `${b.avg_rating.toFixed(2)} ★ (${b.rating_count.toLocaleString("en")})` : null,
          ].filter((x) => x !== null && x !== undefined).join(" · ")))))));
  }
  const chosen = Object.values(filters).reduce((n, v) => n + v.length, 0);
  replace(view, h("section", { class: "search-results", "aria-labelledby": "results-heading", "data-query": q,
                               "data-filters": chosen },
    heading, ...notes, h("div", { class: "with-filters" }, facetsPanel(q, filters, data.facets), list)));
}

function facetLabel(facet, value) {
  if (facet === "decade") return `${value}s`;
  if (facet === "language") { try { return LANGUAGES.of(value) || value; } catch { return value; } }
  return String(value);
}

function facetsPanel(q, filters, facets) {
  const groups = FACETS.map(([facet, key, legend]) => {
    const counts = new Map((facets?.[facet] || []).slice(0, 8).map((f) => [String(f.value), f.count]));
    for (const chosen of filters[key]) if (!counts.has(chosen)) counts.set(chosen, null);
    if (!counts.size) return null;
    return h("fieldset", {}, h("legend", {}, legend),
      [...counts].map(([value, count], i) => {
        const id = `f-${key}-${i}`;
        return h("div", { class: "facet" },
          h("input", { type: "checkbox", id, value, checked: filters[key].includes(value), onchange: (event) => {
            const next = { ...filters, [key]: event.target.checked ? [...filters[key], value]
                                                                    : filters[key].filter((v) => v !== value) };
            go(searchUrl(q, next), { replace: true });
          } }),
          h("label", { for: id }, facetLabel(facet, value), count === null ? "" : h("span", { class: "count" }, ` ${count}`)));
      }));
  }).filter(Boolean);
  if (!groups.length) return h("aside", { class: "filters", "aria-label": "Filters" });
  return h("aside", { class: "filters", "aria-label": "Filters" }, h("h2", { class: "filters-heading" }, "Filters"), groups);
}

// -- a book
async function bookView(id) {
  say("");
  replace(view, h("p", { class: "loading" }, "Loading the book…"));
  let book;
  try {
    book = await api(`/books/${enc(id)}`);
  } catch (error) {
    replace(view, h("div", { class: "error", role: "alert" }, h("h1", {}, "Book not available"),
      h("p", {}, problemText(error)), h("p", {}, h("a", { href: "/", "data-nav": true }, "Back to the home page"))));
    return;
  }
  if (params().get("book") !== id) return;
  document.title = `${book.title} – bookrec`;
  const me = session();
  const similar = h("div", { class: "loading" }, "Loading similar books…");
  const mine = h("div", { class: "mine" });
  const total = book.rating_count || 0;
  const distribution = h("table", { class: "distribution" },
    h("caption", { class: "visually-hidden" }, "Ratings by stars"),
    h("tbody", {}, ["5", "4", "3", "2", "1"].map((s) => {
      const n = book.ratings_distribution?.[s] || 0;
      const bar = h("span", { class: "bar" });
      bar.style.width = `${total ? Math.round((100 * n) / total) : 0}%`;
      return h("tr", {}, h("th", { scope: "row" }, `${s} ★`), h("td", { class: "bar-cell" }, bar),
        h("td", { class: "n" }, n.toLocaleString("en")));
    })));
  const sc = book.shelf_counts || {};
  replace(view, h("article", { class: "book", "aria-labelledby": "book-title", "data-book": book.book_id },
    h("div", { class: "book-cover" }, cover(book, "L")),
    h("div", { class: "book-main" },
      h("h1", { id: "book-title" }, book.title),
      book.subtitle ? h("p", { class: "subtitle" }, book.subtitle) : null,
      h("p", { class: "authors" }, "by ", authorsText(book.authors) || "unknown"),
      book.series ? h("p", { class: "series" }, book.series.position != null
        ? `Book ${book.series.position} of ${book.series.name}` : `Part of ${book.series.name}`) : null,
      h("p", { class: "meta" }, [book.first_publish_year ? `First published ${book.first_publish_year}` : null,
        book.language ? facetLabel("language", book.language) : null].filter(Boolean).join(" · ")),
      h("div", { class: "rating" },
        h("p", {}, h("span", { class: "stars", "aria-hidden": "true" }, stars(book.avg_rating)),
          ` ${book.avg_rating.toFixed(2)} average from ${total.toLocaleString("en")} ${total === 1 ? "rating" : "ratings"}`),
        distribution,
        h("p", { class: "meta" }, `${(sc.want_to_read || 0).toLocaleString("en")} want to read · `
          + `${(sc.currently_reading || 0).toLocaleString("en")} reading · ${(sc.read || 0).toLocaleString("en")} read`)),
      mine,
      book.description ? h("p", { class: "description" }, book.description) : null,
      book.subjects?.length ? h("div", { class: "subjects" }, h("h2", {}, "Subjects"),
        h("ul", {}, book.subjects.slice(0, 12).map((s) => h("li", {},
          h("a", { href: searchUrl(s, {}), "data-nav": true }, s))))) : null),
    h("section", { class: "similar", "aria-labelledby": "similar-heading" },
      h("h2", { id: "similar-heading" }, "Similar books"), similar)));
  renderMine(mine, book, me);
  const reader = me ? `&user_id=${enc(me.sub)}` : "";  // signed in: ranked by the reader's own list
  api(`/books/${enc(id)}/similar?limit=8${reader}`).then((data) => {
    const items = data.items || [];
    const next = items[0] && items[0].reason.startsWith("next in ") ? items[0] : null;
    fill(similar,
      next ? h("p", { class: "next-in-series" }, h("strong", {}, "Next in the series: "),
        bookLink(next, next.title), ` (${next.reason.replace(/^next in /, "")})`) : null,
      bookList(items, { reason: true, label: "Similar books" }));
  }, (error) => fill(similar, h("p", { class: "error" }, `Similar books are unavailable: ${problemText(error)}`)));
}

async function renderMine(box, book, me) {
  if (!me) {
    replace(box, h("p", { class: "hint" }, "Sign in to rate and shelve this book."));
    return;
  }
  const note = h("p", { class: "note", role: "status" });
  const onShelf = await findOnShelf(me, book.book_id);
  const rate = h("fieldset", { class: "rate" }, h("legend", {}, "Your rating"),
    [1, 2, 3, 4, 5].map((n) => h("button", { type: "button", "aria-label": `Rate ${n} ${n === 1 ? "star" : "stars"}`,
      onclick: async () => {
        try {
          await api(`/books/${enc(book.book_id)}/rate`, { method: "POST", body: { rating: n }, token: me.access_token });
          note.textContent = `You rated this book ${n} ${n === 1 ? "star" : "stars"}.`;
          rate.querySelectorAll("button").forEach((b, i) => b.setAttribute("aria-pressed", String(i + 1 === n)));
        } catch (error) { note.textContent = `Rating failed: ${problemText(error)}`; }
      } }, "★".repeat(n))));
  const select = h("select", { id: "shelf-choice" },
    Object.entries(SHELVES).map(([value, name]) => h("option", { value, selected: value === onShelf }, name)));
  const remove = h("button", { type: "button", hidden: !onShelf, onclick: async () => {
    try {
      await api(`/books/${enc(book.book_id)}/shelf`, { method: "DELETE", token: me.access_token });
      note.textContent = "Taken off your shelf.";
      remove.hidden = true;
    } catch (error) { note.textContent = `Could not take it off: ${problemText(error)}`; }
  } }, "Remove from shelf");
  const shelve = h("form", { class: "shelve", onsubmit: async (event) => {
    event.preventDefault();
    try {
      await api(`/books/${enc(book.book_id)}/shelf`, { method: "PUT", body: { shelf: select.value }, token: me.access_token });
      note.textContent = `On your “${SHELVES[select.value]}” shelf.`;
      remove.hidden = false;
    } catch (error) { note.textContent = `Shelving failed: ${problemText(error)}`; }
  } }, h("label", { for: "shelf-choice" }, "Shelf"), select, h("button", { type: "submit" }, "Put on shelf"), remove);
  if (onShelf) note.textContent = `On your “${SHELVES[onShelf]}” shelf.`;
  replace(box, rate, shelve, note);
}

async function findOnShelf(me, bookId) {
  const lists = await Promise.all(Object.keys(SHELVES).map((shelf) =>
    api(`/users/${enc(me.sub)}/shelves/${shelf}?limit=100`).catch(() => ({ items: [] }))));
  const index = lists.findIndex((l) => l.items.some((i) => i.book_id === bookId));
  return index < 0 ? null : Object.keys(SHELVES)[index];
}

// -- account
function renderAccount() {
  const box = $("account");
  const me = session();
  if (me) {
    replace(box, h("span", { class: "who" }, "Signed in as ", h("strong", {}, me.username)),
      h("button", { type: "button", id: "sign-out", onclick: () => { signOut(); renderAccount(); route(); say("Signed out."); } },
        "Sign out"));
    return;
  }
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "sign-in", id: "sign-in-form", hidden: true, "aria-label": "Sign in",
    onsubmit: async (event) => {
      event.preventDefault();
      error.textContent = "";
      const data = new FormData(form);
      const username = String(data.get("username") || "").trim();
      const password = String(data.get("password") || "");
      if (!username || !password) { error.textContent = "Enter your username and password."; return; }
      try {
        await signIn(username, password);
        renderAccount();
        route();
        say(`Signed in as ${username}.`);
      } catch (failure) { error.textContent = failure.message; }
    } },
    h("label", { for: "username" }, "Username"),
    h("input", { id: "username", name: "username", autocomplete: "username", required: true }),
    h("label", { for: "password" }, "Password"),
    h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true }),
    h("button", { type: "submit" }, "Sign in"), error);
  const toggle = h("button", { type: "button", id: "sign-in", "aria-expanded": "false", "aria-controls": "sign-in-form",
    onclick: () => {
      form.hidden = !form.hidden;
      toggle.setAttribute("aria-expanded", String(!form.hidden));
      if (!form.hidden) form.querySelector("input").focus();
    } }, "Sign in");
  replace(box, toggle, form);
}

// -- keyboard: from the search box down into the results, through them, and back
input.addEventListener("keydown", (event) => {
  if (event.key === "ArrowDown") {
    const first = document.querySelector("#results a");
    if (first) { event.preventDefault(); first.focus(); }
  }
});
view.addEventListener("keydown", (event) => {
  const link = event.target.closest("#results a");
  if (!link) return;
  const links = [...document.querySelectorAll("#results a")];
  const i = links.indexOf(link);
  if (event.key === "ArrowDown" && i < links.length - 1) { event.preventDefault(); links[i + 1].focus(); }
  else if (event.key === "ArrowUp") { event.preventDefault(); (i > 0 ? links[i - 1] : input).focus(); }
  else if (event.key === "Escape") { event.preventDefault(); input.focus(); }
});

input.addEventListener("input", () => {
  performance.clearMarks("keystroke");
  performance.mark("keystroke");
  clearTimeout(debounce);
  debounce = setTimeout(() => {
    const q = input.value.trim();
    const keep = q ? filtersFrom(params()) : {};
    go(q ? searchUrl(q, keep) : "/", { replace: Boolean(params().get("q")) && Boolean(q) });
  }, DEBOUNCE_MS);
});
$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  clearTimeout(debounce);
  const q = input.value.trim();
  if (q) go(searchUrl(q, filtersFrom(params())));
});

// -- the router: the query string is the whole state
function route() {
  const p = params();
  const book = p.get("book");
  const q = (p.get("q") || "").trim();
  if (book) {
    bookView(book);
  } else if (q) {
    if (document.activeElement !== input) input.value = q;
    search(q, filtersFrom(p));
  } else {
    home();
  }
}

loadConfig();
renderAccount();
route();
