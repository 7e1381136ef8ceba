// A small Markdown subset (headings, paragraphs, lists, fenced code, `code`, **strong**, *emphasis*, links shown as
// text) built from DOM nodes whose text is set with textContent: markup in the text, HTML included, stays text.

const FENCE = /^\s*(```|~~~)/;
const HEADING = /^(#{1,6})\s+(.*)$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*\d{1,9}[.)]\s+(.*)$/;
const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\s][^*\n]*\*)|(\[[^\]\n]+\]\([^)\s]+\))/g;

function element(tag, children) {
  const node = document.createElement(tag);
  node.append(...children);
  return node;
}

/** Inline spans of `text`: code, strong, emphasis, and links as "label (url)" text (the view opens nothing). */
export function inline(text) {
  const nodes = [];
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > last) nodes.push(text.slice(last, match.index));
    const [token, code, strong, emphasis] = match;
    if (code) nodes.push(element("code", [code.slice(1, -1)]));
    else if (strong) nodes.push(element("strong", [strong.slice(2, -2)]));
    else if (emphasis) nodes.push(element("em", [emphasis.slice(1, -1)]));
    else {
      const split = token.indexOf("](");
      nodes.push(`${token.slice(1, split)} (${token.slice(split + 2, -1)})`);
    }
    last = match.index + token.length;
  }
  if (last < text.length) nodes.push(text.slice(last));
  return nodes;
}

/** `text` as block elements (a fragment); strings become Text nodes, never parsed as HTML. */
export function markdown(text) {
  const fragment = document.createDocumentFragment();
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  let paragraph = [];
  let list = null;
  const flush = () => {
    if (paragraph.length) fragment.append(element("p", inline(paragraph.join("\n"))));
    paragraph = [];
    list = null;
  };
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    if (FENCE.test(line)) {
      flush();
      const fence = line.trim().slice(0, 3);
      const code = [];
      for (i += 1; i < lines.length && !lines[i].trim().startsWith(fence); i += 1) code.push(lines[i]);
      fragment.append(element("pre", [element("code", [code.join("\n")])]));
      continue;
    }
    const heading = HEADING.exec(line);
    const item = BULLET.exec(line) ?? NUMBERED.exec(line);
    if (heading) {
      flush();
      fragment.append(element(`h${Math.min(heading[1].length + 2, 6)}`, inline(heading[2])));
    } else if (item) {
      const tag = BULLET.test(line) ? "ul" : "ol";
      if (paragraph.length) flush();
      if (list?.tagName.toLowerCase() !== tag) {
        list = element(tag, []);
        fragment.append(list);
      }
      list.append(element("li", inline(item[1])));
    } else if (!line.trim()) {
      flush();
    } else {
      list = null;
      paragraph.push(line);
    }
  }
  flush();
  return fragment;
}
