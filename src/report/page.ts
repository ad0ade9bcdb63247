/**
 * The frame of every HTML page the report writes: self-contained (inline CSS), with a CSP that
 * forbids any request (styles inline, images only as data: URLs), readable without script.
 */
export function htmlDocument(titleHtml: string, css: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${titleHtml}</title>
<style>${css}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}
