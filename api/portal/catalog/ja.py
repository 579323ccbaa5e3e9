"""日本語: the traveller status page (the kiosk's languages)."""

MESSAGES = {
    'Skip to main content':
        '本文へスキップ',
    'Language':
        '言語',
    'Tax-free form status':
        '免税書類のステータス',
    'Export deadline':
        '輸出期限',
    'Form number':
        '書類番号',
    'Next step':
        '次のステップ',
    'Check another form':
        '別の書類を確認する',
    'Check your tax-free form':
        '免税書類を確認する',
    'Enter the form number printed next to the QR code and your last name as in your passport.':
        'QRコードの横に印刷された書類番号と、パスポートに記載された姓を入力してください。',
    '10 letters and digits, for example NL 7K3Q W9XD':
        '英数字10文字、例：NL 7K3Q W9XD',
    'Last name':
        '姓',
    'Show status':
        'ステータスを表示',
    'Validate your form at your last EU airport or port, before you check in your luggage.':
        'EU出国前の最後の空港または港で、手荷物を預ける前に書類の確認手続きを行ってください。',
    'Not validated yet':
        'まだ確認されていません',
    'Customs check needed':
        '税関での検査が必要です',
    'Go to the customs desk with your goods, your passport and this form, before you check in your luggage.':
        '手荷物を預ける前に、商品、パスポート、この書類を持って税関カウンターへお越しください。',
    'Export validated':
        '輸出が確認されました',
    'Export validated for part of your goods':
        '商品の一部について輸出が確認されました',
    'Your refund will be paid by {payer}.':
        '払い戻しは {payer} から支払われます。',
    'Refund paid':
        '払い戻し済み',
    'Nothing more to do. Have a good trip!':
        'これ以上の手続きは不要です。よいご旅行を！',
    'Export refused by customs':
        '税関により輸出が拒否されました',
    'This form cannot be validated any more. Ask the shop if you have questions.':
        'この書類はもう確認できません。ご不明な点はお店にお問い合わせください。',
    'Form cancelled by the shop':
        'お店により書類が取り消されました',
    'This form cannot be used. Ask the shop if you have questions.':
        'この書類は使用できません。ご不明な点はお店にお問い合わせください。',
    'Export deadline passed':
        '輸出期限が過ぎています',
    'This form can no longer be validated.':
        'この書類はもう確認できません。',
    'Fill this in.':
        '入力してください。',
    'This is not a valid form number. Check it on your form.':
        '書類番号が正しくありません。書類をご確認ください。',
    'Too many attempts. Wait a minute and try again.':
        '試行回数が多すぎます。1分待ってからもう一度お試しください。',
    'We found no form with this number and last name.':
        'この番号と姓に一致する書類は見つかりませんでした。',
    'This page was open for a long time. Please send it again.':
        'このページは長時間開かれていました。もう一度送信してください。',
    'Go to the start page':
        '最初のページへ',
}
