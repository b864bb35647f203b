// Typesets the math that pymdownx.arithmatex (generic mode) leaves as \( ... \) and \[ ... \]
// inside .arithmatex elements, with the KaTeX files shipped under docs/assets/katex (no CDN).
function zslkitRenderMath(root) {
  root.querySelectorAll(".arithmatex").forEach(function (element) {
    renderMathInElement(element, {
      delimiters: [
        { left: "\\(", right: "\\)", display: false },
        { left: "\\[", right: "\\]", display: true },
      ],
      throwOnError: false,
    });
  });
}

if (typeof document$ !== "undefined") {
  document$.subscribe(function (page) { zslkitRenderMath(page.body); });  // Material's page-load stream
} else {
  document.addEventListener("DOMContentLoaded", function () { zslkitRenderMath(document.body); });
}
