import { describe, expect, it } from "vitest";
import { html, trustedHtml } from "../../src/console/html.js";

describe("html", () => {
  it("escapes every interpolation, in text and in attributes", () => {
    const name = `<script>alert("x")</script>' onmouseover='y`;
    expect(html`<td title="${name}">${name}</td>`.text).toBe(
      "<td title=\"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;y\">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;y</td>",
    );
  });
  it("nests fragments and lists without escaping them twice, and renders nothing for false and null", () => {
    const rows = ["a&b", "<c>"].map((v) => html`<li>${v}</li>`);
    expect(html`<ul>${rows}${false}${null}</ul>`.text).toBe("<ul><li>a&amp;b</li><li>&lt;c&gt;</li></ul>");
  });
  it("passes markup through only by the explicit trustedHtml call", () => {
    expect(html`${trustedHtml("<b>ok</b>")}${"<b>no</b>"}`.text).toBe("<b>ok</b>&lt;b&gt;no&lt;/b&gt;");
  });
});
