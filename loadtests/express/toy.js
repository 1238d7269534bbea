// The aggregator people write today, in Express, for comparison: partial results in a Map in
// process memory keyed by correlation id, released when the fourth branch arrives. No
// validation, no duplicate suppression, no persistence, no timeout; one process only.
//
//     PORT=8080 node loadtests/express/toy.js
const express = require("express");

const EXPECTED = 4;
const partial = new Map();
let released = 0;

const app = express();
app.use(express.json());

app.get("/stats", (req, res) => {
  res.json({ released, pending: partial.size });
});

app.post("/{*path}", (req, res) => {
  const correlation = req.get("ce-correlationid") || "";
  const results = partial.get(correlation) || [];
  results.push(req.body);
  partial.set(correlation, results);
  if (results.length < EXPECTED) {
    res.json({ status: "partial", count: results.length });
    return;
  }
  partial.delete(correlation);
  released += 1;
  res.json({ correlationid: correlation, results });
});

app.listen(Number(process.env.PORT), "127.0.0.1");
