import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lakeLocationProblem } from './lake-roots.js';

const HOME = '/nonexistent-steward-home';

test('inside the workspace folder, only a root strictly inside it admits a location', () => {
  // Threat: a root equal to the workspace folder would admit the store and server.json.
  assert.match(lakeLocationProblem(`${HOME}/server.json`, { roots: [HOME], private: [HOME] }) ?? '', /private folder/);
  assert.match(lakeLocationProblem(`${HOME}/server.json`, { roots: ['/'], private: [HOME] }) ?? '', /private folder/);
  assert.equal(lakeLocationProblem(`${HOME}/lake/a.parquet`, { roots: ['/', `${HOME}/lake`], private: [HOME] }), null);
  assert.match(lakeLocationProblem(`${HOME}/lake/../server.json`, { roots: [`${HOME}/lake`], private: [HOME] }) ?? '', /outside the lake roots/);
});

test('globs are judged by the folder before the first wildcard', () => {
  assert.equal(lakeLocationProblem('/data/lake/**/*.parquet', { roots: ['/data/lake'], private: [] }), null);
  assert.match(lakeLocationProblem('/data/*/x.parquet', { roots: ['/data/lake'], private: [] }) ?? '', /outside the lake roots/);
  assert.match(lakeLocationProblem('/data/lake/*/../../etc/passwd', { roots: ['/data/lake'], private: [] }) ?? '', /outside the lake roots/);
  assert.match(lakeLocationProblem('https://example.com/x.parquet', { roots: ['/'], private: [] }) ?? '', /remote/);
});
