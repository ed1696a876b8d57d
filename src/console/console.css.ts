/** The console's one stylesheet, served from /console/console.css (CSP style-src 'self': no inline styles). */
export const CONSOLE_CSS = `
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1b1f24; background: #f6f7f9; }
header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.2rem; background: #1f2d3d; color: #fff; }
header a { color: #cfe3ff; margin-right: 1rem; }
header form { margin-left: auto; }
.who { opacity: .85; }
main { padding: 1rem 1.5rem; max-width: 70rem; }
table { border-collapse: collapse; background: #fff; margin: .5rem 0 1.2rem; }
th, td { border: 1px solid #d5d9df; padding: .3rem .6rem; text-align: left; vertical-align: top; }
form { display: inline-flex; gap: .5rem; flex-wrap: wrap; align-items: center; margin: .2rem 0; }
label { display: inline-flex; gap: .3rem; align-items: center; }
.banner { background: #b3261e; color: #fff; padding: .6rem 1.2rem; font-weight: 600; position: sticky; top: 0; }
.notice { background: #fff4ce; border: 1px solid #e6c85a; padding: .5rem .8rem; }
.warning { color: #8a5300; font-weight: 600; }
.approval { background: #fff; border: 1px solid #d5d9df; padding: .2rem 1rem .8rem; margin: 1rem 0; }
pre { white-space: pre-wrap; word-break: break-all; font-size: 13px; }
.error { background: #fde7e9; border: 1px solid #d13438; padding: .5rem .8rem; }
tr.stale td { color: #8a6d00; background: #fff4ce; }
details.limits { font-size: 13px; max-width: 40rem; }
`;
