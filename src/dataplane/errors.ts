/** An error answered to a control-API client with an HTTP status (4xx for bad requests). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}
