// Names of the email recording rules, shared by the recording, alert and dashboard files
// so none of them can refer to a series the pack does not record.  Every recorded email
// series keeps the labels of email_events_total but `event`: job, instance, target, provider.
{
  // Emails requested (sent) over the ratio window: the denominator and the volume guard.
  requested(config):: 'target_provider:email_requested:increase' + config.email.ratioWindow,
  // Bounced and complained emails per requested one over the ratio window, computed from
  // email_events_total for every provider; only where at least `ratioMinRequests` were sent.
  bounceRatio(config):: 'target_provider:email_bounced_per_requested:ratio' + config.email.ratioWindow,
  complaintRatio(config):: 'target_provider:email_complained_per_requested:ratio' + config.email.ratioWindow,
  // Opens and clicks per requested email over the engagement window (not SES: it reports neither).
  openRatio(config):: 'target_provider:email_opened_per_requested:ratio' + config.email.engagementWindow,
  clickRatio(config):: 'target_provider:email_clicked_per_requested:ratio' + config.email.engagementWindow,

  // Per email type, from the providers' signed webhooks (email_webhook_events_total): these
  // keep job, instance, provider and email_type (webhook series have no `target`).
  // Emails that reached the recipient's server or bounced over the ratio window: "sent", the
  // denominator every provider's webhook reports (Postmark's never says `requested`).
  typeSent(config):: 'provider_email_type:email_webhook_sent:increase' + config.email.ratioWindow,
  // Bounced and complained per sent email of the type, only with at least `ratioMinRequests` sent.
  typeBounceRatio(config):: 'provider_email_type:email_webhook_bounced_per_sent:ratio' + config.email.ratioWindow,
  typeComplaintRatio(config):: 'provider_email_type:email_webhook_complained_per_sent:ratio' + config.email.ratioWindow,
}
