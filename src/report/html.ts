/**
 * What an offline page with live charts needs, shared by the report stage and `ablate diff
 * --html`: text made safe for HTML, scripts that cannot close their own element, and the
 * bootstrap that turns each chart's Vega-Lite spec into an interactive SVG.
 */

export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Scripts inlined into a page must not close their own <script> element. */
export const inlineScript = (source: string) => source.replace(/<\/script/gi, '<\\/script');

/** A chart's spec as JSON in the page, read by EMBED_CHARTS_SCRIPT through the chart's `data-spec`. */
export const specScript = (id: string, spec: unknown) =>
  `<script type="application/json" id="${id}">${inlineScript(JSON.stringify(spec))}</script>`;

/**
 * Every `.chart[data-spec]` becomes a live Vega view (hover shows the values); what it holds
 * (the report's PNG) stays as the fallback where scripts do not run or its spec fails. The
 * editor action is off: it would go online.
 */
export const EMBED_CHARTS_SCRIPT = `for(const el of document.querySelectorAll('.chart[data-spec]')){const spec=JSON.parse(document.getElementById(el.dataset.spec).textContent);spec.config=Object.assign({},spec.config,{mark:Object.assign({tooltip:true},(spec.config||{}).mark)});vegaEmbed(el,spec,{renderer:'svg',actions:{export:true,source:true,compiled:false,editor:false}}).then(r=>{el.classList.add('live');el.view=r.view;}).catch(e=>console.error('chart '+el.dataset.spec+': '+e.message));}`;
