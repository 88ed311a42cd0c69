// An Express origin behind kontur-gate: every route knows who the user is.
//
//   npm install express jose
//   GATE_URL=https://site.example ORIGIN_URL=https://origin.example PORT=3000 node server.mjs
//
// GATE_URL: the site's public URL (where the gate runs); ORIGIN_URL: this app's URL as the gate
// forwards to it (the gate's ORIGIN_URL setting).

import express from 'express';

import { decodeName, requireGateIdentity } from './gate-identity.mjs';

const app = express();
app.use(requireGateIdentity({ gateUrl: process.env.GATE_URL ?? '', originUrl: process.env.ORIGIN_URL ?? '' }));

app.get('/whoami', (req, res) => {
  res.json({
    ...req.user, // verified: sub, email, name from the assertion
    // The plain headers, for comparison: trustworthy only when nothing but the gate reaches this app.
    header_user: req.get('x-forwarded-user'),
    header_name: decodeName(req.get('x-forwarded-name')),
  });
});

const port = Number(process.env.PORT ?? 3000);
app.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}`));
