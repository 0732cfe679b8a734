// DOM helpers: every text the API returns goes in through textContent, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Text with <mark> around [start, end) ranges counted in Unicode characters (code points), as the search
// service counts them; JavaScript strings count UTF-16 units, so the text is split into code points first.
export function highlighted(text, ranges) {
  if (!ranges || ranges.length === 0) return [text];
  const chars = Array.from(text);
  const out = [];
  let at = 0;
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (start < at) continue;
    if (start > at) out.push(chars.slice(at, start).join(""));
    out.push(h("mark", {}, chars.slice(start, end).join("")));
    at = end;
  }
  if (at < chars.length) out.push(chars.slice(at).join(""));
  return out;
}

export function coverUrl(book, size = "M") {
  if (book.cover_url) return book.cover_url;
  if (book.cover_id && book.cover_id > 0) return `https://covers.openlibrary.org/b/id/${book.cover_id}-${size}.jpg`;
  return null;
}

// A cover image, or the placeholder (the title's initial on a tinted card) when there is none or it
// cannot load (no network): nothing else of the page depends on it.
export function cover(book, size = "M") {
  const placeholder = h("span", { class: "cover placeholder", "aria-hidden": "true" },
    Array.from(book.title || "?")[0].toUpperCase());
  const url = coverUrl(book, size);
  if (!url) return placeholder;
  const img = h("img", { class: "cover", src: url, alt: "", loading: "lazy", decoding: "async",
                         referrerpolicy: "no-referrer" });
  img.addEventListener("error", () => img.replaceWith(placeholder), { once: true });
  return img;
}

export function stars(value) {
  const full = Math.round(value);
  return "★".repeat(full) + "☆".repeat(5 - full);
}
