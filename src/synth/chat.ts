import OpenAI from 'openai';
import type { ChatEndpoint } from './strategy.js';

/**
 * The policy endpoint as synthesis uses it (an OpenAI-compatible chat server: vLLM, the
 * SIMULATED policy's server): one completion per call, seeded. The key is read from the
 * environment variable named by the caller and never printed.
 */
export function chatEndpoint(options: { baseUrl: string; model: string; apiKey: string | null; maxTokens?: number }): ChatEndpoint {
  const client = new OpenAI({ baseURL: options.baseUrl, apiKey: options.apiKey ?? 'none', maxRetries: 3, timeout: 300_000 });
  return {
    async complete(messages, { seed, temperature }) {
      const response = await client.chat.completions.create({
        model: options.model,
        messages: messages.map((m) => ({ role: m.role, content: m.content })),
        seed,
        temperature,
        max_tokens: options.maxTokens ?? 4096,
      });
      return response.choices[0]?.message?.content ?? '';
    },
  };
}
